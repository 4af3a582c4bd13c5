-- touch: set the expiry of a live session, nothing else.
-- KEYS[1] = key; ARGV = expiry ms or '', now ms.
-- Returns 1 if the live record's expiry was set, 0 if there is none.
local key = KEYS[1]
local cur = redis.call('GET', key)
local v, e, w, at = parse(cur)
if not v then return 0 end
if not live(e, ARGV[2]) then return 0 end
write(key, v, ARGV[1], w, string.sub(cur, at))
return 1
