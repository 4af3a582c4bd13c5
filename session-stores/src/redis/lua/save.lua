-- save: compare-and-set on the version of a live session.
-- KEYS[1] = key; ARGV = expected version, new version, expiry ms or '',
-- data, now ms, write token.
-- Returns 1 if written (or already written by this very call), 0 if the
-- stored version differs or the record is gone. A repeated call writes the
-- string again, so that a WAIT after it also covers the first call's write.
local key = KEYS[1]
local cur = redis.call('GET', key)
local v, e, w = parse(cur)
if v ~= ARGV[1] then
  if v == ARGV[2] and w == ARGV[6] then
    rewrite(key, cur, e)
    return 1
  end
  return 0
end
if not live(e, ARGV[5]) then return 0 end
write(key, ARGV[2], ARGV[3], ARGV[6], ARGV[4])
return 1
