-- A play (SPEC §4, §5): resume position, dedupe check, view increment and
-- the new session, atomically. Every key shares the video's hash tag.
-- KEYS[1] view dedupe  (string: until, Unix ms)
-- KEYS[2] day counters (hash: views, watch, ads)
-- KEYS[3] resume       (string: position, seconds)
-- KEYS[4] session      (hash: viewer, pos, t0, w, a, t; see pause.lua)
-- ARGV: 1 owner (0|1), 2 now ms, 3 window ms, 4 duration s, 5 viewer key,
--       6 session ttl ms
-- Returns {reason ('' when counted, 'owner', 'duplicate'), resume position}.
local now = tonumber(ARGV[2])
local resume = tonumber(redis.call('GET', KEYS[3]) or '0')
if resume >= tonumber(ARGV[4]) then
  resume = 0
end
local reason = ''
if ARGV[1] == '1' then
  reason = 'owner'
else
  local dedupe_until = tonumber(redis.call('GET', KEYS[1]) or '0')
  if dedupe_until > now then
    reason = 'duplicate'
  else
    redis.call('SET', KEYS[1], now + tonumber(ARGV[3]), 'PX', ARGV[3])
    redis.call('HINCRBY', KEYS[2], 'views', 1)
  end
end
redis.call('HSET', KEYS[4], 'viewer', ARGV[5], 'pos', resume, 't0', now, 'w', 0, 'a', 0, 't', now)
redis.call('PEXPIRE', KEYS[4], ARGV[6])
return {reason, resume}
