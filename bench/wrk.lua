-- One benchmark scenario for wrk, described by environment variables:
--   BENCH_METHOD     GET (default) or POST
--   BENCH_PATH       path and query
--   BENCH_BODY       request body (POST), sent as application/x-www-form-urlencoded
--   BENCH_AUTH       Authorization header value, the same on every request
--   BENCH_AUTH_FILE  file of Authorization header values, one a line; each is
--                    used at most once (thread k of BENCH_THREADS takes lines
--                    k, k+T, k+2T, ...); when a thread runs out it reuses its
--                    lines and `reused` in the summary says how often
--   BENCH_THREADS    the -t value, needed with BENCH_AUTH_FILE
--   BENCH_CLOSE      non-empty: send `Connection: close` (one connection per
--                    request) instead of keeping connections alive
-- At the end it prints one line "BENCH_RESULT {json}" with requests,
-- duration, errors and latency percentiles in microseconds.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- An unset or empty variable is nil.
local function env(name)
  local value = os.getenv(name)
  if value == "" then
    return nil
  end
  return value
end

local method = env("BENCH_METHOD") or "GET"
local path = env("BENCH_PATH") or "/"
local body = env("BENCH_BODY")
local fixed_auth = env("BENCH_AUTH")
local auth_file = env("BENCH_AUTH_FILE")
local close = env("BENCH_CLOSE")

local headers = {}
local auths = nil
local used = 0
reused = 0

function init(args)
  if close then
    headers["Connection"] = "close"
  end
  if body then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  if fixed_auth then
    headers["Authorization"] = fixed_auth
  end
  if auth_file then
    local total = tonumber(env("BENCH_THREADS") or "1")
    auths = {}
    local index = 0
    for line in io.lines(auth_file) do
      if index % total == id then
        table.insert(auths, line)
      end
      index = index + 1
    end
  end
end

function request()
  if auths then
    used = used + 1
    if used > #auths then
      reused = reused + 1
    end
    headers["Authorization"] = auths[(used - 1) % #auths + 1]
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local total_reused = 0
  for _, thread in ipairs(threads) do
    total_reused = total_reused + (thread:get("reused") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"reused_credentials":%d,"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    total_reused,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
