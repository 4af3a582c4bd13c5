-- index_delete: deletes a user's live index if its version is as expected.
-- KEYS[1] = key; ARGV = expected version, now ms.
-- Returns 1 if deleted, 0 otherwise.
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'e')
if cur[1] ~= ARGV[1] then return 0 end
if cur[2] and tonumber(cur[2]) <= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', key)
return 1
