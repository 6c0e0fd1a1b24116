-- wrk script: each connection alternates play and pause of one session, as
-- a player does. Viewers are anonymous, each session from its own random
-- client IP (sent as X-Forwarded-For; the gateway trusts 127.0.0.1 as a
-- proxy in this benchmark), over VIDEOS videos with ids 1..VIDEOS.
-- Run with as many wrk threads as connections (one connection per thread),
-- so that each response belongs to the thread's last request.
local videos = tonumber(os.getenv("VIDEOS") or "200")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
  state = "play"
end

function request()
  if state == "pause" then
    local body = '{"session_id":"' .. session .. '","position_seconds":' .. (resume + 30) .. '}'
    return wrk.format("POST", "/api/v1/videos/" .. video .. "/pause",
      { ["content-type"] = "application/json", ["x-forwarded-for"] = ip }, body)
  end
  video = math.random(1, videos)
  ip = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format("POST", "/api/v1/videos/" .. video .. "/play",
    { ["content-type"] = "application/json", ["x-forwarded-for"] = ip }, "{}")
end

function response(status, headers, body)
  if status ~= 200 then
    state = "play"
    return
  end
  if state == "play" then
    session = body:match('"session_id":"(%w+)"')
    resume = tonumber(body:match('"resume_position_seconds":(%d+)') or "0")
    state = session and "pause" or "play"
  else
    state = "play"
  end
end
