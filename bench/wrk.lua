-- wrk script for scripts/bench.sh.
--
-- Environment:
--   BENCH_PATH        request path, e.g. /mcp
--   BENCH_METHOD      request method (default GET)
--   BENCH_BODY        request body (default none)
--   BENCH_HEADERS     extra request headers, one "Name: value" per line
--   BENCH_TOKEN       one bearer token sent on every request (static request: no per-request Lua)
--   BENCH_TOKEN_FILE  a file with one token per line, sent round-robin (a pre-formatted request
--                     per token, so the per-request Lua cost is one table lookup)
-- Prints one parseable line from done():
--   BENCH requests=… duration_us=… rps=… p50_us=… p90_us=… p99_us=… … status_errors=…
-- (status_errors counts non-2xx/3xx responses; the driver checks it against the expected status.)

local path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN")
local token_file = os.getenv("BENCH_TOKEN_FILE")

local method = os.getenv("BENCH_METHOD") or ""
if method == "" then
  method = "GET"
end
local body = os.getenv("BENCH_BODY") or ""

wrk.method = method
wrk.path = path
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end
if body ~= "" then
  wrk.body = body
end
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

if token_file and token_file ~= "" then
  local requests = {}
  local count = 0
  local index = 0

  init = function(args)
    for line in io.lines(token_file) do
      if line ~= "" then
        count = count + 1
        local headers = {}
        for name, value in pairs(wrk.headers) do
          headers[name] = value
        end
        headers["Authorization"] = "Bearer " .. line
        requests[count] = wrk.format(method, path, headers, wrk.body)
      end
    end
    if count == 0 then
      error("no tokens in " .. token_file)
    end
    -- Start each run at a different place in the pool.
    math.randomseed(os.time())
    index = math.random(0, count - 1)
  end

  request = function()
    index = index + 1
    if index > count then
      index = 1
    end
    return requests[index]
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f "
      .. "status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
