-- Shared by every script (the scripts are this file followed by their own).
-- write: sets the version, data and write token, and the expiry as
-- set_expiry does.
-- set_expiry: sets field `e` and the key's TTL to `at` (ms since the
-- epoch), or removes both when `at` is empty.
local function write(key, v, d, w, at)
  if at == '' then
    redis.call('HSET', key, 'v', v, 'd', d, 'w', w)
    redis.call('HDEL', key, 'e')
    redis.call('PERSIST', key)
  else
    redis.call('HSET', key, 'v', v, 'd', d, 'w', w, 'e', at)
    redis.call('PEXPIREAT', key, at)
  end
end
local function set_expiry(key, at)
  if at == '' then
    redis.call('HDEL', key, 'e')
    redis.call('PERSIST', key)
  else
    redis.call('HSET', key, 'e', at)
    redis.call('PEXPIREAT', key, at)
  end
end
