-- Paces each wrk connection: with C connections and a delay of D ms, the rate is about C × 1000 / D.
-- wrk's latency excludes the delay, so this gives latency at a fixed moderate rate with wrk's precision.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "10")
function delay()
  return delay_ms
end
