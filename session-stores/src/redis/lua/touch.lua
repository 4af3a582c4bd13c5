-- touch: set the expiry of a live session, nothing else.
-- KEYS[1] = key; ARGV = expiry ms or '', now ms.
-- Returns 1 if the live record's expiry was set, 0 if there is none. An
-- expiry as long as the stored one is written in place.
local key = KEYS[1]
local v, e, w, at = header(key)
if not v then return 0 end
if not live(e, ARGV[2]) then return 0 end
local new = ARGV[1]
if #new == #e and #e > 0 then
  redis.call('SETRANGE', key, #v + 1, new)
  redis.call('PEXPIREAT', key, new)
else
  local record = string.sub(redis.call('GET', key), at)
  store(key, v .. ':' .. new .. ':' .. w .. ':' .. record, new)
end
return 1
