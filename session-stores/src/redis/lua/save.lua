-- save: compare-and-set on the version of a live session.
-- KEYS[1] = key; ARGV = expected version, new version, expiry ms or '',
-- the session string, now ms, write token (the string's own).
-- Returns 1 if written (or already written by this very call), 0 if the
-- stored version differs or the record is gone. A repeated call writes
-- again, so that a WAIT after it also covers the first call's write.
local key = KEYS[1]
local v, e, w = header(key)
if v ~= ARGV[1] then
  if v == ARGV[2] and w == ARGV[6] then
    again(key, v)
    return 1
  end
  return 0
end
if not live(e, ARGV[5]) then return 0 end
store(key, ARGV[4], ARGV[3])
return 1
