-- create: insert a new session unless a live one holds the key.
-- KEYS[1] = key; ARGV = expiry ms or '', the session string, now ms, write
-- token (the string's own).
-- Returns 1 if written (or already written by this very call), 0 if a live
-- record holds the key. A repeated call writes again, so that a WAIT after
-- it also covers the first call's write.
local key = KEYS[1]
local v, e, w = header(key)
if v then
  if w == ARGV[4] then
    again(key, v)
    return 1
  end
  if live(e, ARGV[3]) then return 0 end
end
store(key, ARGV[2], ARGV[1])
return 1
