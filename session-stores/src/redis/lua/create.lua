-- create: insert a new session unless a live one holds the key.
-- KEYS[1] = key; ARGV = version, expiry ms or '', data, now ms, write token.
-- Returns 1 if written (or already written by this very call), 0 if a live
-- record holds the key. A repeated call writes the string again, so that a
-- WAIT after it also covers the first call's write.
local key = KEYS[1]
local cur = redis.call('GET', key)
local v, e, w = parse(cur)
if v then
  if w == ARGV[5] then
    rewrite(key, cur, e)
    return 1
  end
  if live(e, ARGV[4]) then return 0 end
end
write(key, ARGV[1], ARGV[2], ARGV[5], ARGV[3])
return 1
