-- report.lua - wrk's end-of-run figures as one JSON line, for the harness (loadtests/harness).
-- wrk prints p50/p75/p90/p99 by itself (--latency) but not p95, and its text is meant for people.
-- Loaded by wrk with -s, or by messages.lua with dofile.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, ' ..
    '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    e.status, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
