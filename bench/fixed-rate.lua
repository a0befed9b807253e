-- A fixed rate: one slot every 1000 / BENCH_RATE ms on one schedule (one per wrk thread; run with -t1),
-- and a connection that is ready takes the next free slot. What wrk makes of it, measured at 2,000 req/s
-- with 20 connections: the average rate is the one asked, but wrk fires its timers on whole
-- wall-clock milliseconds (gettimeofday, truncated), so requests leave on 1 ms ticks: two on most ticks
-- (50-60 %), with 0 or 4 on others (about 15-20 % get none) and more after a pause of the machine.
-- Slots are computed on that same clock, as the ms to the tick of the next slot: on a monotonic
-- clock the sub-ms offset between the two clocks spread them over 0 to ~8 a tick.
-- A stall longer than about 20 slots (10 ms at 2,000 req/s) busies every connection: the slots it
-- covers are dropped, not sent late, and wrk times each request from its actual send (unlike wrk2), so
-- such a stall is under-counted in the latency and shows as a lower rate.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
-- Wall-clock ms (about 1.8e15 µs since 1970: exact in a double).
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

local period = 1000 / tonumber(os.getenv("BENCH_RATE") or "2000")
local slot = 0
-- wrk adds the returned ms to the current whole ms and fires on the first loop pass at or after that
-- tick, so returning (tick of the slot) - (current tick) sends on the first tick not before the slot.
function delay()
  local now = now_ms()
  slot = math.max(now, slot + period)
  return math.ceil(slot) - math.floor(now)
end
