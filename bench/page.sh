#!/usr/bin/env bash
# Live page footprint: bytes the page transfers, and the agent's resident memory (VmRSS from
# /proc) with no client, with the page open in a headless Chromium, after the page is closed,
# and with two websocat streams (the two streams the page opens) for comparison.
#
# Run the demo first (e.g. `DEMO_PROFILE=release scripts/demo`), then:
#
#     bench/page.sh [http://127.0.0.1:8000]     HOLD=60 seconds per phase by default
#
# The agent must run on this machine (its pid is found from its listening port).
set -euo pipefail

url="${1:-http://127.0.0.1:8000}"
hold="${HOLD:-60}"
port="${url##*:}"
port="${port%%/*}"

pid="$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)"
[[ -n "$pid" ]] || { echo "page.sh: no process listens on port $port" >&2; exit 1; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
streams() { curl -s "$url/agent/metrics" | awk '/^prometheus_agent_streams_open / { print $2 }'; }

echo "agent pid $pid at $url, $hold s per phase"
html="$(curl -s -H 'Accept: text/html' "$url/" | wc -c)"
js="$(curl -s "$url/page/uPlot-1.6.32.iife.min.js" | wc -c)"
css="$(curl -s "$url/page/uPlot-1.6.32.min.css" | wc -c)"
echo "page bytes: html $html + js $js + css $css = $((html + js + css))"

sleep "$hold"
echo "no client:            VmRSS $(rss) kB, streams $(streams)"

profile="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --remote-debugging-port=0 "$url/" >/dev/null 2>&1 &
browser=$!
sleep "$hold"
echo "page open:            VmRSS $(rss) kB, streams $(streams)"
kill "$browser"; wait "$browser" 2>/dev/null || true
rm -rf "$profile"
sleep 10
echo "page closed:          VmRSS $(rss) kB, streams $(streams)"

ws="ws://${url#http://}"
# stdin held open (by sleep) as a terminal would: websocat ends a stream on stdin's EOF.
sleep "$((hold + 5))" | websocat "$ws/metrics/nodes" >/dev/null 2>&1 &
w1=$!
sleep "$((hold + 5))" | websocat "$ws/metrics/pods" >/dev/null 2>&1 &
w2=$!
sleep "$hold"
echo "two websocat streams: VmRSS $(rss) kB, streams $(streams)"
kill "$w1" "$w2"; wait "$w1" "$w2" 2>/dev/null || true
sleep 10
echo "closed:               VmRSS $(rss) kB, streams $(streams)"
