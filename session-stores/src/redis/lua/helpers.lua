-- Shared by the session scripts (each is this file followed by its own).
-- A session is one string: '<version>:<expiry ms or empty>:<token>:<record>'.
-- header: the version, expiry and write token of the session at `key`,
-- and the position where its record starts, read from the string's first
-- 128 bytes (a header is at most about 90); nothing for a missing key, a
-- WRONGTYPE error for a string not in that form.
-- live: whether the expiry `e` ('' for none) is after `now` (ms).
-- again: writes the version of the session at `key` over itself, a write
-- that changes nothing, so that a WAIT after it covers the earlier write
-- a repeated call found done.
-- store: sets `key` to the session string `value` and its TTL to `at`
-- (none if empty).
local function header(key)
  local head = redis.call('GETRANGE', key, 0, 127)
  if head == '' then return nil end
  local v, e, w, at = string.match(head, '^(%d+):(%d*):([^:]*):()')
  if not v then
    error(redis.error_reply('WRONGTYPE the key holds something other than a session'))
  end
  return v, e, w, at
end
local function live(e, now)
  return e == '' or tonumber(e) > tonumber(now)
end
local function again(key, v)
  redis.call('SETRANGE', key, 0, v)
end
local function store(key, value, at)
  redis.call('SET', key, value)
  if at ~= '' then redis.call('PEXPIREAT', key, at) end
end
