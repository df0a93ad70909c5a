-- GET userinfo with the same access token. env: TOKEN
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end
