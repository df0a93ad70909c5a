-- Each thread (one connection) follows its own refresh-token chain: every answer carries the
-- rotated refresh token used by the next request. env: TOKENS (one per thread), AUTH
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local i = 0
  for line in io.lines(os.getenv("TOKENS")) do
    if i == id then token = line end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("AUTH")
end
function request()
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  local rotated = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if rotated then token = rotated end
end
