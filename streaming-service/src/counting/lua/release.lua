-- Write-back, step 3 (SPEC §5): forget a pending record once the database
-- has committed it, unless it is another batch's. KEYS[1] pending,
-- KEYS[2] counters; ARGV[1] token. Returns 1 when the bucket must stay
-- marked dirty: it has newer counters, or a pending record remains (another
-- replica's batch, taken after this one was released: if that replica
-- fails before its release, the next write-back must still find it);
-- else 0.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
return redis.call('EXISTS', KEYS[2])
