-- save: compare-and-set on the version of a live session.
-- KEYS[1] = key; ARGV = expected version, new version, expiry ms or '',
-- data, now ms, write token.
-- Returns 1 if written (or already written by this very call), 0 if the
-- stored version differs or the record is gone. A repeated call writes its
-- token again, so that a WAIT after it also covers the first call's write.
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e', 'w')
if cur[1] ~= ARGV[1] then
  if cur[1] == ARGV[2] and cur[3] == ARGV[6] then
    redis.call('HSET', key, 'w', ARGV[6])
    return 1
  end
  return 0
end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[5]) then return 0 end
write(key, ARGV[2], ARGV[4], ARGV[6], ARGV[3])
return 1
