-- Shared by the session scripts (each is this file followed by its own).
-- A session is one string: '<version>:<expiry ms or empty>:<token>:<record>'.
-- parse: the version, expiry and write token of the string `cur` (false
-- for a missing key), and the position where its record starts; nothing
-- for a missing key, and a WRONGTYPE error for a string not in that form.
-- live: whether the expiry `e` ('' for none) is after `now` (ms).
-- write: sets the session to version `v`, expiry `at` ('' for none),
-- token `w` and record `d`, and the key's TTL to `at` (none if empty).
-- rewrite: writes the string `cur` again unchanged, with the TTL of its
-- expiry `e`, so that a WAIT after it covers it.
local function parse(cur)
  if not cur then return nil end
  local v, e, w, at = string.match(cur, '^(%d+):(%d*):([^:]*):()')
  if not v then
    error(redis.error_reply('WRONGTYPE the key holds something other than a session'))
  end
  return v, e, w, at
end
local function live(e, now)
  return e == '' or tonumber(e) > tonumber(now)
end
local function rewrite(key, cur, e)
  redis.call('SET', key, cur)
  if e ~= '' then redis.call('PEXPIREAT', key, e) end
end
local function write(key, v, at, w, d)
  rewrite(key, v .. ':' .. at .. ':' .. w .. ':' .. d, at)
end
