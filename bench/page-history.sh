#!/usr/bin/env bash
# The live page opening a long past window from history: a real Prometheus backfilled (with
# promtool) with an hour of a synthetic cluster scraped every second, 20 pods and 4 nodes,
# the release agent at UPDATE_INTERVAL=1s, and the page opened in headless Chromium with
# /?start=…&end=… over 3,600 steps (86,400 rows). Prints:
#   - the time from navigation until all history is plotted, with the requests it took and
#     how much of it was spent waiting for the agent's answers;
#   - responsiveness while it loads: the longest main-thread task (PerformanceObserver
#     "longtask"), how late a script evaluation (CDP Runtime.evaluate, every 100 ms) and a
#     mouse move over a plot (CDP Input.dispatchMouseEvent) were handled;
#   - memory: the page's JS heap (CDP Performance.getMetrics, before and after a garbage
#     collection) and Chromium's proportional set size (PSS from /proc/PID/smaps_rollup), all
#     processes and renderers, with a blank tab before and with the page after;
#   - that every plotted point equals its field in the agent's history CSV.
#
#   bench/page-history.sh                              # an hour, 20 pods, 4 nodes
#   SPAN=7200 PODS=50 NODES=10 bench/page-history.sh
#
# Needs chromium, /usr/bin/prometheus and promtool (scripts/setup installs them). The
# benchmark is tests/page_history.rs, run in release mode (its first build takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

export PAGE_BENCH_SPAN="${SPAN:-3600}"
export PAGE_BENCH_PODS="${PODS:-20}"
export PAGE_BENCH_NODES="${NODES:-4}"
echo "cargo test --release --test page_history -- --ignored --nocapture" \
  "(PAGE_BENCH_SPAN=$PAGE_BENCH_SPAN PAGE_BENCH_PODS=$PAGE_BENCH_PODS PAGE_BENCH_NODES=$PAGE_BENCH_NODES)"
echo "chromium: $(chromium --version 2>/dev/null || echo 'not found')"
cargo test --release --quiet --test page_history -- --ignored --nocapture --test-threads=1 2>&1 |
  grep -v -e '^running ' -e '^test result' -e '^$' -e '^test .* ok$' -e '^\.$'
