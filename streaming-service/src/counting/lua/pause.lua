-- A pause (SPEC §4, §5): watched seconds, ad views and the saved position,
-- atomically. Every key shares the video's hash tag.
-- KEYS[1] session      (hash: viewer, pos, t0 (play, Unix ms), w (watched
--                       seconds so far), a (ad views so far), t (last
--                       report, Unix ms: what scripts before t0 read))
-- KEYS[2] day counters (hash: views, watch, ads)
-- KEYS[3] resume       (string: position, seconds)
-- KEYS[4] ad dedupe    (hash: slot position -> until, Unix ms)
-- ARGV: 1 viewer key, 2 position s, 3 now ms, 4 duration s, 5 owner (0|1),
--       6 ads served (0|1), 7 window ms, 8 session ttl ms, 9 resume ttl ms,
--       10 slot interval s, 11 watch slack s
-- Returns {-1} for an unknown session, else {added, ad views, position}.
local s = redis.call('HMGET', KEYS[1], 'viewer', 'pos', 't0', 'w', 'a', 't')
if not s[1] or s[1] ~= ARGV[1] then
  return {-1}
end
local now = tonumber(ARGV[3])
local last = tonumber(s[2])
-- A session played before t0 existed counts its age from its last report
-- (its t), as the scripts of then did, and keeps that as its start.
local started = tonumber(s[3]) or tonumber(s[6]) or now
local watched = tonumber(s[4]) or 0
local session_ads = tonumber(s[5]) or 0
local position = math.min(tonumber(ARGV[2]), tonumber(ARGV[4]))
local added = 0
local ads = 0
if ARGV[5] ~= '1' and position > last then
  local elapsed = math.floor(math.max(now - started, 0) / 1000)
  -- The session's total stays within its wall-clock age plus the slack.
  added = math.max(math.min(position - last, elapsed + tonumber(ARGV[11]) - watched), 0)
  local step = tonumber(ARGV[10])
  -- One ad per report, the last slot crossed, and at most one per started
  -- interval of the session's age.
  local slot = math.floor(position / step) * step
  if ARGV[6] == '1' and slot > last and session_ads < 1 + math.floor(elapsed / step) then
    local dedupe_until = tonumber(redis.call('HGET', KEYS[4], slot) or '0')
    if dedupe_until <= now then
      redis.call('HSET', KEYS[4], slot, now + tonumber(ARGV[7]))
      redis.call('PEXPIRE', KEYS[4], ARGV[7])
      ads = 1
    end
  end
end
if added > 0 then
  redis.call('HINCRBY', KEYS[2], 'watch', added)
end
if ads > 0 then
  redis.call('HINCRBY', KEYS[2], 'ads', ads)
end
-- t stays written while replicas running the scripts before t0 may share
-- this Redis (a rolling deploy): they read it.
redis.call('HSET', KEYS[1], 'pos', position, 't0', started, 'w', watched + added,
  'a', session_ads + ads, 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('SET', KEYS[3], position, 'PX', ARGV[9])
return {added, ads, position}
