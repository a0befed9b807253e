-- Bursts: each wrk connection waits BENCH_DELAY_MS after each response. The connections start together
-- and stay in step, so with C connections the load is C requests at once every BENCH_DELAY_MS (about
-- C × 1000 / BENCH_DELAY_MS req/s): how a proxy absorbs simultaneous arrivals.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "10")
function delay()
  return delay_ms
end
