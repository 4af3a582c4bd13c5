-- create: insert a new session unless a live one holds the key.
-- KEYS[1] = key; ARGV = version, expiry ms or '', data, now ms, write token.
-- Returns 1 if written (or already written by this very call), 0 if a live
-- record holds the key. A repeated call writes its token again, so that a
-- WAIT after it also covers the first call's write.
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  local cur = redis.call('HMGET', key, 'e', 'w')
  if cur[2] == ARGV[5] then
    redis.call('HSET', key, 'w', ARGV[5])
    return 1
  end
  if not cur[1] or tonumber(cur[1]) > tonumber(ARGV[4]) then return 0 end
  redis.call('DEL', key)
end
write(key, ARGV[1], ARGV[3], ARGV[5], ARGV[2])
return 1
