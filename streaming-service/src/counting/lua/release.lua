-- Write-back, step 3 (SPEC §5): forget a pending record once the database
-- has committed it, unless it is another batch's. KEYS[1] pending;
-- ARGV[1] token.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
