local out = {}
for i = 0, #KEYS / 3 - 1 do
  local v, g, l = KEYS[3*i+1], KEYS[3*i+2], KEYS[3*i+3]
  if ARGV[1] ~= '' and redis.call('GET', l) == ARGV[1] then
    redis.call('DEL', l)
  end
  if (redis.call('GET', g) or '0') == ARGV[3*i+2] then
    redis.call('SET', v, ARGV[3*i+4], 'PX', ARGV[3*i+3])
    out[i+1] = 1
  else
    out[i+1] = 0
  end
end
return out
