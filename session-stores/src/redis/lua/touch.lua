-- touch: set the expiry of a live session, nothing else.
-- KEYS[1] = key; ARGV = expiry ms or '', now ms.
-- Returns 1 if the live record's expiry was set, 0 if there is none.
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e')
if not cur[1] then return 0 end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[2]) then return 0 end
set_expiry(key, ARGV[1])
return 1
