-- wrk script: every session is played, then paused 30 s further on, as a
-- player does. Viewers are anonymous, each session from its own random
-- client IP (sent as X-Forwarded-For; the gateway trusts 127.0.0.1 as a
-- proxy in this benchmark), over VIDEOS videos with ids 1..VIDEOS.
--
-- A wrk thread drives several connections with one Lua state, and a
-- response does not say which connection it came on. So each thread keeps
-- a queue: an answered play puts its session at the back, and the next
-- request on any of the thread's connections pauses the session at the
-- front, or plays a new one when the queue is empty. Plays and pauses
-- therefore stay one to one (up to the sessions in flight when the run
-- ends), and few threads can drive many connections.
local videos = tonumber(os.getenv("VIDEOS") or "200")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
  -- Sessions waiting for their pause, oldest first: {video, ip, session, resume}.
  pending, head, tail = {}, 1, 0
end

function request()
  if head <= tail then
    local s = pending[head]
    pending[head] = nil
    head = head + 1
    local body = '{"session_id":"' .. s[3] .. '","position_seconds":' .. (s[4] + 30) .. '}'
    return wrk.format("POST", "/api/v1/videos/" .. s[1] .. "/pause",
      { ["content-type"] = "application/json", ["x-forwarded-for"] = s[2],
        ["x-request-id"] = "pause-" .. s[3] }, body)
  end
  local video = math.random(1, videos)
  local ip = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  -- The gateway echoes x-request-id (SPEC §8): the play's id names its
  -- video and viewer, so that its response can be paused without knowing
  -- which connection it came on.
  return wrk.format("POST", "/api/v1/videos/" .. video .. "/play",
    { ["content-type"] = "application/json", ["x-forwarded-for"] = ip,
      ["x-request-id"] = "play-" .. video .. "-" .. ip }, "{}")
end

function response(status, headers, body)
  if status ~= 200 then
    return
  end
  local session = body:match('"session_id":"(%w+)"')
  if session then
    local id = ""
    for name, value in pairs(headers) do
      if name:lower() == "x-request-id" then id = value end
    end
    local video, ip = id:match("^play%-(%d+)%-([%d.]+)$")
    if video then
      local resume = tonumber(body:match('"resume_position_seconds":(%d+)') or "0")
      tail = tail + 1
      pending[tail] = { video, ip, session, resume }
    end
  end
end
