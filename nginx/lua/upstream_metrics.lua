-- upstream_metrics.lua - every attempt this web node made to pass a request to an app node,
-- counted, and served to Prometheus: the web tier's own view of the app tier.
--
-- A request that nginx could not deliver to app1 and then sent to app2 counts one failed attempt
-- for app1 and one answer from app2. The app's own metrics count only what reaches the app, so
-- they can never show the first one.
--
-- lua-nginx-module 0.10.28 on LuaJIT 2.1 (Debian trixie's libnginx-mod-http-lua), nginx 1.26.
-- Two functions, each called by a one-line block in the configuration:
--   count()  in the log phase of each API request (snippets/count-upstream.conf), after the
--            answer has gone to the client, so no client waits for it; static files never run it.
--   serve()  answers Prometheus' scrape: GET /metrics on the status port (conf.d/status.conf).
-- The figures live in a lua_shared_dict (conf.d/upstream-metrics.conf): memory shared by this
-- node's nginx workers, so whichever worker answers a scrape sees every worker's counts. They
-- start at zero when nginx starts (a counter reset, which Prometheus' rate() allows for) and
-- survive a reload.
--
-- nginx lists every attempt of one request in $upstream_addr, $upstream_status,
-- $upstream_response_time and $upstream_header_time, in the same order: "10.0.3.5:8000,
-- 10.0.3.6:8000" when the first node failed and the second answered, and " : " between two
-- upstream groups when the request was passed on by an internal redirect.

local M = {} -- the module's functions, handed to require() at the end

-- Looked up once per worker and kept in locals: in LuaJIT a local is cheaper than a global.
local dict = ngx.shared.upstream_metrics -- the shared dictionary (conf.d/upstream-metrics.conf)
local var = ngx.var -- nginx's variables of the current request ($upstream_addr, ...)
local find, gmatch, match = string.find, string.gmatch, string.match -- search, iterate, capture
local gsub, sub, format = string.gsub, string.sub, string.format -- replace, cut, format
local concat, sort = table.concat, table.sort -- join lines, order them
local ipairs, pairs = ipairs, pairs -- iterate over a list, over a table's keys
local tonumber, tostring = tonumber, tostring -- text <-> number

-- Upper bounds of the latency histogram's buckets, in seconds (+Inf is added when served). Few
-- and fixed; each is also a bound of the app's own histogram (app/guestbook/metrics.py), so the
-- same quantile can be read on both sides of the hop. nginx times attempts to the millisecond.
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5 }
local NBUCKETS = #BUCKETS -- how many (+Inf not included)

-- The app node's name at each address, as this worker last saw it (address -> name). A cache in
-- the worker's own memory, so the shared dictionary is written only when a name is new.
local known = {}

-- Count one attempt. addr: the app node's address; status: the HTTP status nginx recorded for it;
-- seconds: how long the attempt took; header: its $upstream_header_time, "-" when no response
-- header came back (the connection was refused or reset, or timed out).
local function count_attempt(addr, status, seconds, header)
  -- Did the app node answer at all? (A 5xx it sent is an answer; the status label says which.)
  local outcome = (header == "-") and "failed" or "answered"
  -- One more attempt for this node, status and outcome (incr's third argument: start at 0).
  dict:incr("attempts|" .. addr .. "|" .. status .. "|" .. outcome, 1, 0) -- "attempts|addr|200|..."
  -- Only answers are timed: a refused connection takes 0 ms, and would make a dead node look fast.
  if outcome == "failed" then
    return -- nothing more to count for this attempt
  end
  local t = tonumber(seconds) or 0 -- "0.004" -> 0.004 (seconds)
  local i = 1 -- the first bucket whose bound is >= t ...
  while i <= NBUCKETS and t > BUCKETS[i] do -- ... found by walking up the bounds;
    i = i + 1 -- NBUCKETS + 1 stands for +Inf
  end
  -- Each answer goes into its own bucket only; serve() adds them up into Prometheus' cumulative
  -- buckets. So an answer costs three increments in all, not one per bucket.
  dict:incr("bucket|" .. addr .. "|" .. i, 1, 0) -- answers in that bucket
  dict:incr("sum|" .. addr, t, 0) -- their total time, the histogram's _sum
end

-- The entries of one of nginx's per-attempt lists, in order: "a, b : c" -> { "a", "b", "c" }, 3.
local function entries(list)
  local items, n = {}, 0 -- the entries, and how many so far
  for item in gmatch(list or "", "[^ ,]+") do -- every run of characters that are not space or comma
    if item ~= ":" then -- a lone ":" separates two upstream groups: not an attempt
      n = n + 1 -- one more entry ...
      items[n] = item -- ... kept in order
    end
  end
  return items, n -- the list, and its length
end

-- Count every attempt of the current request; called in its log phase.
function M.count()
  local last = var.upstream_addr -- "10.0.3.5:8000", or a list of them; the last one answered
  if not last then -- nginx answered this request itself (a 413, say): nothing went upstream
    return -- so there is nothing to count
  end
  if not find(last, " ", 1, true) then -- one attempt (the usual case): no list to split
    local status, seconds = var.upstream_status, var.upstream_response_time -- "200", "0.004"
    count_attempt(last, status, seconds, var.upstream_header_time) -- and "0.004" (or "-")
  else -- several attempts: split the four lists alike, and count each attempt
    local addrs, n = entries(last) -- the addresses tried, in order
    local statuses = entries(var.upstream_status) -- each attempt's status ...
    local times = entries(var.upstream_response_time) -- ... its time ...
    local headers = entries(var.upstream_header_time) -- ... and whether a header came back
    for i = 1, n do -- every attempt, in the order nginx made them
      count_attempt(addrs[i], statuses[i] or "-", times[i], headers[i] or "-") -- the i-th one
    end
    last = addrs[n] -- the address of the last attempt, named below
  end
  -- Name the node: $upstream_addr is an address, but each app node names itself in the X-App
  -- header of every answer (app/guestbook/nodes.py), which nginx keeps as $upstream_http_x_app
  -- (the last answer's). Learned from real answers, so nothing here lists the nodes or their
  -- addresses; serve() falls back to the address for a node that has not answered yet.
  local app = var.upstream_http_x_app -- "app1", or nil when the last attempt got no answer
  if app and known[last] ~= app then -- new to this worker (or the address changed hands)
    known[last] = app -- remembered here: the next answer from this node writes nothing
    -- Shared with the other workers and the scrape; at most 32 characters, letters, digits and
    -- ._- only, so a label value can never break the text format.
    local name = gsub(sub(app, 1, 32), "[^%w._-]", "_") -- (gsub's first result: the text)
    dict:set("name|" .. last, name) -- address -> name, for every worker and the scrape
  end
end

-- What Prometheus shows for each metric (# HELP lines of the text format).
local HELP_ATTEMPTS = "Attempts this web node made to pass a request to an app node, by the "
  .. "status nginx recorded and whether the node answered (failed: refused, reset or timed "
  .. "out, and nginx tries the other node)." -- one sentence, split to fit the page
local HELP_SECONDS = "Time from sending a request to an app node to the end of its answer "
  .. "($upstream_response_time), answered attempts only." -- likewise

-- The labels of one app node in Prometheus' text format: app="app1",addr="10.0.3.5:8000". The
-- learned name, else the address itself (a node that has not answered since nginx started, or
-- "app", the pool's own name, when nginx found no live node to try at all).
local function node_labels(names, addr)
  return format('app="%s",addr="%s"', names[addr] or addr, addr) -- both: which address is which
end

-- Answer a scrape: every count, in Prometheus' text format (version 0.0.4).
function M.serve()
  -- Read the dictionary once, and sort its entries by kind (a key is "kind|address|...").
  local names, attempts, buckets, sums = {}, {}, {}, {} -- address -> name; lines; counts; totals
  local keys = dict:get_keys(0) -- every key (0: no limit; there are a few dozen)
  sort(keys) -- in order, so each scrape lists the series alike
  for _, key in ipairs(keys) do -- each key ...
    local kind, addr, rest = match(key, "^(%a+)|([^|]+)|?(.*)$") -- "attempts", the address, rest
    local value = dict:get(key) -- ... and its value (nil if it vanished meanwhile)
    if kind == "name" then -- the app node's name at this address
      names[addr] = value -- kept for the labels
    elseif kind == "attempts" and value then -- rest = "200|answered"
      local status, outcome = match(rest, "^([^|]+)|(.+)$") -- split into status and outcome
      attempts[#attempts + 1] = { addr, status, outcome, value } -- one line, written below
    elseif kind == "bucket" and value then -- rest = the bucket's number, 1 .. NBUCKETS + 1
      buckets[addr] = buckets[addr] or {} -- this address's buckets ...
      buckets[addr][tonumber(rest)] = value -- ... answers in this one
    elseif kind == "sum" and value then -- this address's total seconds
      sums[addr] = value -- kept for the histogram's _sum
    end
  end

  local out = {} -- the answer, line by line
  local function add(...) -- add one line, made by string.format
    out[#out + 1] = format(...) -- format's arguments as they came
  end
  add("# HELP fourtier_upstream_attempts_total %s", HELP_ATTEMPTS) -- what it is
  add("# TYPE fourtier_upstream_attempts_total counter") -- a counter: only ever goes up
  for _, a in ipairs(attempts) do -- one line per address, status and outcome
    local labels = node_labels(names, a[1]) -- app="...",addr="..."
    local line = 'fourtier_upstream_attempts_total{%s,status="%s",outcome="%s"} %s' -- its form
    add(line, labels, a[2], a[3], a[4]) -- labels, status, outcome, count
  end

  add("# HELP fourtier_upstream_response_seconds %s", HELP_SECONDS) -- what it is
  add("# TYPE fourtier_upstream_response_seconds histogram") -- _bucket, _sum and _count lines
  local addrs = {} -- the addresses that have answers ...
  for addr in pairs(buckets) do -- (a table's keys come in no particular order)
    addrs[#addrs + 1] = addr -- ... in a list
  end
  sort(addrs) -- in order, the same on every scrape
  for _, addr in ipairs(addrs) do -- one histogram per app node
    local labels = node_labels(names, addr) -- app="...",addr="..."
    local total = 0 -- answers so far, bucket after bucket: Prometheus' buckets are cumulative
    for i = 1, NBUCKETS + 1 do -- every bound, then +Inf
      total = total + (buckets[addr][i] or 0) -- answers up to this bound
      local le = BUCKETS[i] and tostring(BUCKETS[i]) or "+Inf" -- the bucket's upper bound
      add('fourtier_upstream_response_seconds_bucket{%s,le="%s"} %s', labels, le, total) -- one
    end
    add("fourtier_upstream_response_seconds_sum{%s} %s", labels, sums[addr] or 0) -- total time
    add("fourtier_upstream_response_seconds_count{%s} %s", labels, total) -- answers (= +Inf)
  end
  out[#out + 1] = "" -- the text format ends with a newline
  ngx.print(concat(out, "\n")) -- the whole answer in one write
end

return M -- what require("upstream_metrics") gives: { count = ..., serve = ... }
