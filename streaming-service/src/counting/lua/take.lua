-- Write-back, step 1 (SPEC §5): move a bucket's counters into its pending
-- record stamped with a batch token, or return the record an interrupted
-- write-back left. KEYS[1] counters, KEYS[2] pending; ARGV[1] token.
-- Returns the pending hash as a flat list, empty when there is nothing.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('HGETALL', KEYS[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'token', ARGV[1])
return redis.call('HGETALL', KEYS[2])
