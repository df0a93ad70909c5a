-- POST one authorization code per request to the token endpoint (each code works once).
-- env: CODES (file, one code per line), AUTH (Basic credentials), REDIRECT_URI
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  codes, next_index = {}, 1
  local stride, i = tonumber(os.getenv("THREADS")), 0
  for line in io.lines(os.getenv("CODES")) do
    if i % stride == id then table.insert(codes, line) end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("AUTH")
end
function request()
  local code = codes[next_index] or "exhausted"
  next_index = next_index + 1
  return wrk.format(nil, nil, nil, "grant_type=authorization_code&code=" .. code ..
    "&redirect_uri=" .. os.getenv("REDIRECT_URI"))
end
