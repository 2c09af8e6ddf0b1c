#!/usr/bin/env bash
# Keep-alive benchmark: GET /nodes over one keep-alive connection, the same with a fresh
# connection per request (Connection: close), and nginx serving the same bytes over
# keep-alive, all with wrk (one thread, one connection) in one run.
#
#   bench/keepalive.sh [URL]     URL of a running agent (e.g. started by scripts/demo);
#                                without it, scripts/demo (release build) is started on a
#                                free port and stopped afterwards.
#
# Environment: DURATION (seconds per wrk run, default 10), ROWS (rows /nodes must hold before
# measuring, default 100 = the default BUFFER_SIZE).
# Needs wrk and nginx (Debian packages wrk and nginx-light); scripts/setup does not install
# them because no test needs them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
duration="${DURATION:-10}"
rows="${ROWS:-100}"

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

run() { # label, wrk arguments...
    local label="$1"
    shift
    local out
    out="$(wrk -t1 -c1 -d"${duration}s" --latency "$@")"
    local rps avg p99
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    avg="$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    printf '%-34s %12s %10s %10s\n' "$label" "$rps" "$avg" "$p99"
    echo "$rps" >"$work/rps.$label"
}

echo "wrk -t1 -c1 -d${duration}s, $bytes bytes per answer"
printf '%-34s %12s %10s %10s\n' "" "requests/s" "avg" "p99"
run agent-keepalive "$url/nodes?size=$rows"
run agent-close -H 'Connection: close' "$url/nodes?size=$rows"
run nginx-keepalive "http://127.0.0.1:$nginx_port/nodes"

python3 - "$work" <<'EOF'
import sys
d = sys.argv[1]
r = {k: float(open(f"{d}/rps.{k}").read()) for k in ("agent-keepalive", "agent-close", "nginx-keepalive")}
print(f"keep-alive per request vs Connection: close: {r['agent-close'] / r['agent-keepalive']:.2f}x the time"
      f" (target <= 2x)")
print(f"agent keep-alive vs nginx: {100 * r['agent-keepalive'] / r['nginx-keepalive']:.1f} % of nginx's"
      f" requests/s (target >= 25 %)")
EOF
