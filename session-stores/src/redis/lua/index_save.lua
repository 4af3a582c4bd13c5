-- index_save: compare-and-set on the version of a user's live index.
-- KEYS[1] = key; ARGV = expected version ('' for none: insert only), new
-- version, expiry ms or '', data, now ms.
-- Returns 1 if written, 0 if the stored version differs (a missing or
-- expired index has none). The index's writes are idempotent, so a write
-- repeated after a lost reply needs no token: it is refused and redone on
-- fresh data.
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e')
local live = cur[1] and not (cur[2] and tonumber(cur[2]) <= tonumber(ARGV[5]))
if live then
  if cur[1] ~= ARGV[1] then return 0 end
else
  if ARGV[1] ~= '' then return 0 end
  redis.call('DEL', key)
end
if ARGV[3] == '' then
  redis.call('HSET', key, 'v', ARGV[2], 'd', ARGV[4])
  redis.call('HDEL', key, 'e')
  redis.call('PERSIST', key)
else
  redis.call('HSET', key, 'v', ARGV[2], 'd', ARGV[4], 'e', ARGV[3])
  redis.call('PEXPIREAT', key, ARGV[3])
end
return 1
