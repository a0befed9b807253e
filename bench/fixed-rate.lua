-- A fixed rate, evenly spaced: one request every 1000 / BENCH_RATE ms, as wrk2 or k6's constant arrival
-- rate send them. A connection that is ready takes the next free slot of that schedule (one schedule per
-- wrk thread; run with -t1). While any connection is free, requests go out on time however slowly the
-- target answers, so a stall shows in the latency instead of lowering the rate. wrk delays by whole
-- milliseconds, so arrivals are spread at that resolution.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local period = 1000 / tonumber(os.getenv("BENCH_RATE") or "2000")
local slot = 0
function delay()
  local now = now_ms()
  slot = math.max(now, slot + period)
  return math.floor(slot - now + 0.5)
end
