-- Write-back, step 1 (SPEC §5): move a bucket's counters into its pending
-- record stamped with a batch token and the bucket's next batch sequence,
-- or return the record an interrupted write-back left. KEYS[1] counters,
-- KEYS[2] pending, KEYS[3] last sequence (string); ARGV[1] token, ARGV[2]
-- how long the last sequence is kept, ms.
-- The sequence is Redis's clock in microseconds, or one more than the
-- bucket's last when the clock is not ahead of it: it grows even across a
-- restart that lost the last sequence. Returns the pending hash as a flat
-- list, empty when there is nothing.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('HGETALL', KEYS[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local t = redis.call('TIME')
local seq = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if seq <= last then
  seq = last + 1
end
seq = string.format('%.0f', seq)
redis.call('SET', KEYS[3], seq, 'PX', ARGV[2])
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'seq', seq)
return redis.call('HGETALL', KEYS[2])
