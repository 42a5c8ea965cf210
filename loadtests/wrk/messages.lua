-- messages.lua - wrk sends the guestbook mix of loadtests/locustfiles/http_users.py MessagesUser:
-- READ_WEIGHT reads of the newest messages for WRITE_WEIGHT posts. The harness passes the paths,
-- weights and body from loadtests/locustfiles/targets.py in the environment (WRK_*), so both tools
-- send the same requests.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local list_path = os.getenv("WRK_LIST_PATH")
local post_path = os.getenv("WRK_POST_PATH")
local body = os.getenv("WRK_BODY")
local reads = tonumber(os.getenv("WRK_READ_WEIGHT"))
local writes = tonumber(os.getenv("WRK_WRITE_WEIGHT"))

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16))
end

function request()
  if math.random(reads + writes) <= reads then
    return wrk.format("GET", list_path)
  end
  return wrk.format("POST", post_path, {["Content-Type"] = "application/json"}, body)
end
