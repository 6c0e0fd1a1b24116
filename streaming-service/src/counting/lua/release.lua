-- Write-back, step 3 (SPEC §5): forget a pending record once the database
-- has committed it, unless it is another batch's. KEYS[1] pending,
-- KEYS[2] counters; ARGV[1] token. Returns 1 when the bucket has newer
-- counters (so it must stay marked dirty), else 0.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return redis.call('EXISTS', KEYS[2])
