-- Introspect the same access token again and again. env: TOKEN, AUTH
function init(args)
  wrk.method = "POST"
  wrk.body = "token=" .. os.getenv("TOKEN")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. os.getenv("AUTH")
end
