-- wrk script of the Tollgate benchmark (bench/run.ts passes the arguments after `--`):
--   mode       "static"  one key and one body: wrk's own fixed-request fast path, no Lua per request
--              "dynamic" one request per key (and body) pre-formatted once in init, taken in turn
--   keys_file  gateway or upstream keys, one per line
--   body_file  one or more request bodies (JSON); with several, requests alternate between them
-- done() prints one line `WRK_JSON {...}` (latencies in microseconds) that the harness parses.

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local prepared = {}
local count = 0
local cursor = 0

local function next_request()
  cursor = cursor % count + 1
  return prepared[cursor]
end

function init(args)
  local mode, keys_file = args[1], args[2]
  local bodies = {}
  for j = 3, #args do
    bodies[#bodies + 1] = read_file(args[j])
  end
  local keys = {}
  for line in io.lines(keys_file) do
    if #line > 0 then
      keys[#keys + 1] = line
    end
  end
  assert(#keys > 0 and #bodies > 0, "bench.lua: need a keys file and at least one body file")

  wrk.method = "POST"
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.headers["content-type"] = "application/json"
  if mode == "static" then
    wrk.headers["x-api-key"] = keys[1]
    wrk.body = bodies[1]
    return
  end

  local total = math.max(#keys, #bodies)
  for j = 1, total do
    local headers = {
      ["Host"] = wrk.headers["Host"],
      ["anthropic-version"] = "2023-06-01",
      ["content-type"] = "application/json",
      ["x-api-key"] = keys[(j - 1) % #keys + 1],
    }
    prepared[j] = wrk.format("POST", wrk.path, headers, bodies[(j - 1) % #bodies + 1])
  end
  count = total
  -- Defining the global `request` is what makes wrk call Lua for every request.
  request = next_request
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,'
      .. '"status":%.0f,"timeout":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"mean":%.1f,"max":%.0f,'
      .. '"stdev":%.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, latency.stdev))
end
