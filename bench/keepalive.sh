#!/usr/bin/env bash
# Keep-alive benchmark: GET /nodes over one keep-alive connection, the same with a fresh
# connection per request (Connection: close), and nginx serving the same bytes over
# keep-alive, all with wrk (one thread, one connection) in one run. The three alternate for
# several rounds so that load from other processes hits them alike; medians are reported.
#
#   bench/keepalive.sh [URL]     URL of a running agent (e.g. started by scripts/demo);
#                                without it, scripts/demo (release build) is started on a
#                                free port and stopped afterwards.
#
# Environment: DURATION (seconds per wrk run, default 5), ROUNDS (default 5), ROWS (rows
# /nodes must hold before measuring, default 99: 33 whole cycles of the demo's 3 nodes fill
# the default BUFFER_SIZE=100).
# Needs wrk and nginx (Debian packages wrk and nginx-light); scripts/setup does not install
# them because no test needs them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-5}"
rounds="${ROUNDS:-5}"
rows="${ROWS:-99}"

die() { printf 'keepalive: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (Debian: apt-get install wrk)"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -x "$nginx_bin" ]] || die "nginx is not installed (Debian: apt-get install nginx-light)"
command -v curl >/dev/null || die "curl is not installed"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work="$(mktemp -d "${TMPDIR:-/tmp}/keepalive-bench.XXXXXX")"
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

url="${1:-}"
if [[ -z "$url" ]]; then
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    echo "starting scripts/demo (release build, UPDATE_INTERVAL=1s) with the agent on $url"
    PORT="$port" DEMO_PROFILE=release UPDATE_INTERVAL=1s setsid "$root/scripts/demo" \
        >"$work/demo.log" 2>&1 &
    pids+=("$!")
fi
url="${url%/}"

deadline=$(( SECONDS + 600 ))
until [[ "$(curl -sf "$url/nodes" 2>/dev/null | wc -l)" -gt "$rows" ]]; do
    (( SECONDS < deadline )) || die "$url/nodes did not reach $rows rows within 600 s"
    sleep 1
done
curl -sf -o "$work/nodes.csv" "$url/nodes?size=$rows"
bytes="$(wc -c <"$work/nodes.csv")"
echo "/nodes?size=$rows: $(( $(wc -l <"$work/nodes.csv") - 1 )) rows, $bytes bytes"

nginx_port="$(free_port)"
mkdir -p "$work/www" "$work/tmp"
cp "$work/nodes.csv" "$work/www/nodes"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp;
    scgi_temp_path $work/tmp;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
        location / { default_type "text/csv; charset=utf-8"; }
    }
}
EOF
"$nginx_bin" -p "$work" -e "$work/nginx.err" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=("$!")
until curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/nodes"; do
    kill -0 "${pids[-1]}" 2>/dev/null || die "nginx did not start: $(cat "$work/nginx.err")"
    sleep 0.2
done

run() { # label, wrk arguments...: appends "requests/s avg-latency-us" to $work/<label>
    local label="$1"
    shift
    wrk -t1 -c1 -d"${duration}s" "$@" | awk '
        function us(v) {
            if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6
        }
        $1 == "Latency" && !lat { lat = us($2) }
        /^Requests\/sec/ { rps = $2 }
        END { print rps, lat }' >>"$work/$label"
}

echo "wrk -t1 -c1 -d${duration}s, $rounds rounds, $bytes bytes per answer"
for round in $(seq "$rounds"); do
    run agent-keepalive "$url/nodes?size=$rows"
    run agent-close -H 'Connection: close' "$url/nodes?size=$rows"
    run nginx-keepalive "http://127.0.0.1:$nginx_port/nodes"
    echo "round $round (requests/s): keep-alive $(tail -n1 "$work/agent-keepalive" | cut -d' ' -f1)," \
        "close $(tail -n1 "$work/agent-close" | cut -d' ' -f1)," \
        "nginx $(tail -n1 "$work/nginx-keepalive" | cut -d' ' -f1)"
done

python3 - "$work" <<'EOF'
import statistics, sys
d = sys.argv[1]
runs = {}
for k in ("agent-keepalive", "agent-close", "nginx-keepalive"):
    runs[k] = [tuple(map(float, line.split())) for line in open(f"{d}/{k}")]
n = len(runs["nginx-keepalive"])
print(f"{'median of %d rounds' % n:24} {'requests/s':>12} {'avg latency':>12}")
for k, v in runs.items():
    print(f"{k:24} {statistics.median(r for r, _ in v):12.0f} {statistics.median(l for _, l in v):10.0f}us")
ka, close, ngx = (statistics.median(r for r, _ in runs[k]) for k in runs)
print(f"keep-alive time per request / Connection: close: {close / ka:.2f} (target <= 2)")
print(f"agent keep-alive / nginx keep-alive: {100 * ka / ngx:.1f} % of nginx's requests/s (target >= 25 %)")
rounds = [100 * a[0] / b[0] for a, b in zip(runs["agent-keepalive"], runs["nginx-keepalive"])]
print("  per round: " + ", ".join(f"{p:.0f} %" for p in rounds))
EOF
