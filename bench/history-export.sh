#!/usr/bin/env bash
# History export benchmark: the agent's memory and speed while it exports a long span.
#
#   bench/history-export.sh                      # 100,000 steps at 1 s, /nodes then /pods
#   STEPS=20000 TABLES=nodes bench/history-export.sh
#
# A real Prometheus gets a past of the synthetic cluster scraped every STEP seconds over
# STEPS·STEP seconds (blocks written by promtool, `examples/backfill.rs`), and keeps
# scraping the exporter, which continues the same series. The agent (release build) polls
# it live; after IDLE seconds its RSS is the idle figure. Then each table is exported over
# STEPS steps of STEP seconds with curl while the agent's VmRSS is sampled every 20 ms.
# Reported per export: idle and peak RSS (and VmHWM, the lifetime high-water mark), total
# time, time per 1,000 steps, bytes, rows and distinct steps, and the CPU seconds the agent
# and Prometheus spent on it. The second table's "idle" is the RSS after the first export.
# The agent inherits the environment: QUERIES_FILE, for instance, can make tables wider or
# longer (more rows per step means fewer steps per chunk, up to 20,000 rows per chunk).
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${STEPS:-100000}"
STEP="${STEP:-1}"
TABLES="${TABLES:-nodes pods}"
IDLE="${IDLE:-20}"
WINDOW="${WINDOW:-10s}"
PROMETHEUS="${PROMETHEUS_BIN:-/usr/bin/prometheus}"

work="$(mktemp -d "${TMPDIR:-/tmp}/history-export.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to $2 seconds for command $1 to succeed.
wait_until() {
  local deadline=$((SECONDS + $2))
  until eval "$1" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for: $1" >&2; return 1; }
    sleep 0.2
  done
}

# A field of /proc/PID/status in kB, without forking.
status_kb() {
  local key value rest
  while read -r key value rest; do
    [ "$key" = "$2:" ] && { echo "$value"; return; }
  done <"/proc/$1/status"
}

# User + system CPU time of PID in clock ticks.
cpu_ticks() {
  local f
  read -r -a f <"/proc/$1/stat"
  echo $((f[13] + f[14]))
}
hz="$(getconf CLK_TCK)"

echo "building the agent and the backfill tool (release)"
cargo build --release --quiet
cargo build --release --quiet --example backfill

span=$((STEPS * STEP + 30))
exporter_port="$(free_port)"
echo "backfilling $span s of scrapes every $STEP s (this takes a while)"
target/release/examples/backfill --data "$work/data" --span "$span" --interval "$STEP" \
  --serve "127.0.0.1:$exporter_port" >"$work/backfill.out" 2>"$work/backfill.log" &
pids+=($!)
wait_until "grep -q SERVING= '$work/backfill.out'" 7200
eval "$(grep FROM_MS= "$work/backfill.out")"
cat "$work/backfill.log"

prom_port="$(free_port)"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: ${STEP}s
  scrape_timeout: ${STEP}s
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    honor_timestamps: true
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
EOF
"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --storage.tsdb.retention.time=30d --web.listen-address="127.0.0.1:$prom_port" \
  --log.level=warn 2>"$work/prometheus.log" &
prom_pid=$!
pids+=("$prom_pid")
wait_until "curl -sf http://127.0.0.1:$prom_port/-/ready" 120

agent_port="$(free_port)"
PROMETHEUS_URL="http://127.0.0.1:$prom_port" NAMESPACE=energy-lab UPDATE_INTERVAL=5s \
  WINDOW="$WINDOW" LISTEN_ADDR="127.0.0.1:$agent_port" RUST_LOG=warn \
  target/release/prometheus-agent 2>"$work/agent.log" &
agent_pid=$!
pids+=("$agent_pid")
agent="http://127.0.0.1:$agent_port"
wait_until "curl -sf $agent/livez" 30
sleep "$IDLE"

start_s=$((FROM_MS / 1000 + 20))
end_s=$((start_s + (STEPS - 1) * STEP))
echo
echo "agent $(target/release/prometheus-agent --version 2>/dev/null || echo prometheus-agent), $("$PROMETHEUS" --version 2>&1 | head -n1)"
echo "past: $SAMPLES samples, $(du -sh "$work/data" | cut -f1) of blocks; export: $STEPS steps of ${STEP}s, WINDOW=$WINDOW"
for table in $TABLES; do
  url="$agent/$table?start=$start_s&end=$end_s&step=${STEP}s"
  idle_kb="$(status_kb "$agent_pid" VmRSS)"
  hwm_before_kb="$(status_kb "$agent_pid" VmHWM)"
  agent_cpu0="$(cpu_ticks "$agent_pid")"
  prom_cpu0="$(cpu_ticks "$prom_pid")"
  curl -sS -o "$work/export.csv" -w '%{http_code} %{size_download} %{time_total}\n' "$url" \
    >"$work/curl.out" &
  curl_pid=$!
  peak_kb="$idle_kb"
  while kill -0 "$curl_pid" 2>/dev/null; do
    rss="$(status_kb "$agent_pid" VmRSS)"
    [ "$rss" -gt "$peak_kb" ] && peak_kb="$rss"
    sleep 0.02
  done
  wait "$curl_pid"
  hwm_kb="$(status_kb "$agent_pid" VmHWM)"
  agent_cpu=$(($(cpu_ticks "$agent_pid") - agent_cpu0))
  prom_cpu=$(($(cpu_ticks "$prom_pid") - prom_cpu0))
  read -r code bytes seconds <"$work/curl.out"
  rows=$(($(wc -l <"$work/export.csv") - 1))
  distinct="$(tail -n +2 "$work/export.csv" | cut -d, -f3 | uniq | wc -l)"
  echo
  echo "GET /$table?start=$start_s&end=$end_s&step=${STEP}s -> HTTP $code"
  awk -v idle="$idle_kb" -v peak="$peak_kb" -v hwm0="$hwm_before_kb" -v hwm="$hwm_kb" \
    -v t="$seconds" -v steps="$STEPS" -v bytes="$bytes" -v rows="$rows" -v distinct="$distinct" \
    -v acpu="$agent_cpu" -v pcpu="$prom_cpu" -v hz="$hz" 'BEGIN {
      printf "  agent RSS: idle %.1f MiB, peak %.1f MiB (+%.1f MiB); VmHWM %.1f MiB before, %.1f MiB after\n",
        idle / 1024, peak / 1024, (peak - idle) / 1024, hwm0 / 1024, hwm / 1024
      printf "  time: %.1f s in all, %.3f s per 1,000 steps\n", t, t / steps * 1000
      printf "  exported: %d bytes, %d rows, %d distinct steps (%d asked)\n", bytes, rows, distinct, steps
      printf "  CPU: agent %.1f s, Prometheus %.1f s\n", acpu / hz, pcpu / hz
    }'
  echo "  last row: $(tail -n 1 "$work/export.csv")"
  if grep -q WARN "$work/agent.log"; then
    echo "  agent warnings:"; grep WARN "$work/agent.log" | tail -n 5 | sed 's/^/    /'
  fi
done
