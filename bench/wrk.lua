-- bench/load.py's wrk script. One file, three modes (environment BENCH_WRK_MODE):
--   max   : closed loop, as fast as the connections go (no callback but done(), so wrk
--           does not parse the headers: the cheapest for the client);
--   rate  : a fixed rate of BENCH_WRK_RATE requests/s over all connections (wrk has no
--           -R; this is wrk2's open schedule approximated with delay());
--   cache : closed loop that also counts the X-Page-Cache header (hit / miss / absent)
--           and non-2xx answers, in its own short run because response() costs the client.
-- done() prints one line "BENCH_JSON {...}" that bench/load.py reads.

local mode = os.getenv("BENCH_WRK_MODE") or "max"
local threads = {}

-- Counters live in each thread's Lua state; done() runs in the main one and reads them.
hits, misses, absent, non2xx, late, max_lag_ms = 0, 0, 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

if mode == "rate" then
  local rate = tonumber(os.getenv("BENCH_WRK_RATE") or "0")
  local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
  local conns = tonumber(os.getenv("BENCH_WRK_CONNECTIONS") or "1")
  local interval_us = 1e6 * nthreads / rate -- this thread's share of the rate
  local ok, ffi = pcall(require, "ffi")
  local now_us
  if ok then
    ffi.cdef([[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clk_id, bench_timespec *tp);
    ]])
    local ts = ffi.new("bench_timespec")
    now_us = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
    end
  end
  local next_at = nil

  -- Called before each request but a connection's first. Each request takes the thread's
  -- next free slot, one interval after the previous one, so the rate holds whatever the
  -- latency, as long as a connection is free when its slot comes (else it is late).
  function delay()
    if not now_us then
      return math.floor(conns * interval_us / 1000) -- plain Lua: a fixed think time
    end
    local now = now_us()
    if next_at == nil then
      next_at = now
    end
    local wait = next_at - now
    if wait < -interval_us then
      late = late + 1
      max_lag_ms = math.max(max_lag_ms, -wait / 1000)
    end
    next_at = next_at + interval_us
    return math.max(0, math.floor(wait / 1000))
  end
end

if mode == "cache" then
  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    end
    local value = nil
    for name, v in pairs(headers) do
      if string.lower(name) == "x-page-cache" then
        value = string.lower(v)
      end
    end
    if value == "hit" then
      hits = hits + 1
    elseif value == "miss" then
      misses = misses + 1
    else
      absent = absent + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = { hits = 0, misses = 0, absent = 0, non2xx = 0, late = 0, max_lag_ms = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      local v = thread:get(name) or 0
      if name == "max_lag_ms" then
        totals[name] = math.max(totals[name], v)
      else
        totals[name] = totals[name] + v
      end
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"mode":"%s","requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},'
      .. '"cache":{"hit":%d,"miss":%d,"absent":%d},"non2xx":%d,"late":%d,"max_lag_ms":%.1f}\n',
    mode, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max,
    totals.hits, totals.misses, totals.absent, totals.non2xx, totals.late, totals.max_lag_ms
  ))
end
