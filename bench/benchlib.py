"""Shared pieces of the benchmarks: release builds, processes on free loopback ports that are
always stopped, /proc figures of a process, and the agent's own metrics.

Every command a benchmark starts is printed (with the environment it sets), so a figure can
be reproduced by hand.
"""
import atexit
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
VICTORIA_METRICS = os.environ.get("VICTORIA_METRICS_BIN", "/usr/bin/victoria-metrics")
NAMESPACE = "energy-lab"  # the synthetic exporter's experiment namespace

_children = []
_workdir = None


def say(text=""):
    print(text, flush=True)


def die(text):
    say(f"error: {text}")
    sys.exit(1)


def workdir():
    """A temporary directory for logs and Prometheus data, removed at exit."""
    global _workdir
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="prometheus-agent-bench.")
    return _workdir


def target_dir():
    path = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def build(examples=()):
    """Release builds of the agent and the given examples; returns their paths."""
    command = ["cargo", "build", "--release", "--quiet", "--bin", "prometheus-agent"]
    for example in examples:
        command += ["--example", example]
    say("$ " + shlex.join(command))
    subprocess.run(command, cwd=ROOT, check=True)
    release = os.path.join(target_dir(), "release")
    paths = {"agent": os.path.join(release, "prometheus-agent")}
    for example in examples:
        paths[example] = os.path.join(release, "examples", example)
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, argv, env=None, wrapper=()):
    """Starts a process with its output in the work directory; printed as a shell command."""
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    say(f"$ {shown + ' ' if shown else ''}{shlex.join(list(wrapper) + list(argv))}")
    log = open(os.path.join(workdir(), name + ".log"), "wb")
    process = subprocess.Popen(list(wrapper) + list(argv), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    process.bench_name = name
    process.bench_log = log.name
    _children.append(process)
    return process


def stop(process, grace=5.0):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(process, lines=20):
    try:
        with open(process.bench_log, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _cleanup():
    for process in reversed(_children):
        stop(process)
    if _workdir and not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(_workdir, ignore_errors=True)


atexit.register(_cleanup)
for _signal in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signal, lambda number, frame: sys.exit(128 + number))


def http_get(url, timeout=5.0):
    """(status, body bytes, seconds); status 0 when there was no HTTP answer."""
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            return response.status, body, time.monotonic() - began
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - began
    except (OSError, ValueError):
        return 0, b"", time.monotonic() - began


def wait_until(what, seconds, check, process=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            die(f"{what}: {process.bench_name} exited ({process.returncode}):\n{log_tail(process)}")
        value = check()
        if value:
            return value
        time.sleep(0.2)
    die(f"{what}: not within {seconds} s" + (f"\n{log_tail(process)}" if process else ""))


# --- /proc figures ------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of the whole process (every thread, including ended ones)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status(pid):
    """VmRSS, VmHWM (bytes) and Threads from /proc/<pid>/status."""
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                figures[key] = int(value)
    return figures


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def mib(n):
    return f"{n / 2**20:.1f} MiB"


# --- the stack ----------------------------------------------------------------------------

def start_exporter(binary, extra_args=(), convention="a", window_secs=10):
    port = free_port()
    process = start("exporter", [binary, "--listen", f"127.0.0.1:{port}", "--convention",
                                 convention, "--window", str(window_secs), *extra_args])
    url = f"http://127.0.0.1:{port}"
    wait_until("synthetic exporter", 300, lambda: http_get(url + "/")[0] == 200, process)
    return process, url


def start_prometheus(targets, scrape_interval="1s", data=None, retention="1h"):
    """A real Prometheus scraping `targets`; `data` is its TSDB directory (a new one in the
    work directory by default: give one holding backfilled blocks, and a `retention` that
    keeps them)."""
    if not os.access(PROMETHEUS, os.X_OK):
        die(f"no Prometheus at {PROMETHEUS}: run scripts/setup")
    port = free_port()
    config = os.path.join(workdir(), "prometheus.yml")
    hosts = ", ".join(f"'{t.split('//')[1]}'" for t in targets)
    with open(config, "w") as f:
        f.write(f"global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\n"
                f"scrape_configs:\n  - job_name: synthetic\n    honor_labels: true\n"
                f"    static_configs:\n      - targets: [{hosts}]\n")
    process = start("prometheus", [PROMETHEUS, f"--config.file={config}",
                                   f"--storage.tsdb.path={data or os.path.join(workdir(), 'data')}",
                                   f"--web.listen-address=127.0.0.1:{port}",
                                   f"--storage.tsdb.retention.time={retention}", "--log.level=warn",
                                   "--web.enable-lifecycle"])
    process.bench_config = config
    url = f"http://127.0.0.1:{port}"
    wait_until("Prometheus", 60, lambda: http_get(url + "/-/ready")[0] == 200, process)
    return process, url


def start_victoria_metrics(targets, scrape_interval="1s"):
    """A single-node VictoriaMetrics scraping `targets` as `start_prometheus` does."""
    if not os.access(VICTORIA_METRICS, os.X_OK):
        die(f"no VictoriaMetrics at {VICTORIA_METRICS}: run scripts/setup")
    port = free_port()
    config = os.path.join(workdir(), "victoria-metrics.yml")
    hosts = ", ".join(f"'{t.split('//')[1]}'" for t in targets)
    with open(config, "w") as f:
        f.write(f"global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\n"
                f"scrape_configs:\n  - job_name: synthetic\n    honor_labels: true\n"
                f"    static_configs:\n      - targets: [{hosts}]\n")
    process = start("victoria-metrics", [VICTORIA_METRICS,
                                         f"-storageDataPath={os.path.join(workdir(), 'vm-data')}",
                                         f"-httpListenAddr=127.0.0.1:{port}",
                                         f"-promscrape.config={config}",
                                         "-retentionPeriod=1d", "-loggerLevel=WARN",
                                         # A scrape of the 200-node cluster is 30 MB.
                                         "-promscrape.maxScrapeSize=1GB"])
    process.bench_config = config
    process.bench_vm = True
    url = f"http://127.0.0.1:{port}"
    wait_until("VictoriaMetrics", 60, lambda: http_get(url + "/health")[0] == 200, process)
    return process, url


def stop_scraping(process, url):
    """Empties the scrape configuration of a server started here and reloads it: what it
    holds stays queryable, and it does little else from then on."""
    with open(process.bench_config, "w") as f:
        f.write("scrape_configs: []\n")
    if hasattr(process, "bench_vm"):
        process.send_signal(signal.SIGHUP)
    else:
        status_code, body = http_post(url + "/-/reload", {})
        if status_code != 200:
            die(f"reloading {process.bench_name}: HTTP {status_code} {body[:200]!r}")


def go_allocated_bytes(url):
    """go_memstats_alloc_bytes_total of a Go server (Prometheus, VictoriaMetrics)."""
    status_code, body, _ = http_get(url + "/metrics", timeout=30)
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("go_memstats_alloc_bytes_total "):
            return float(line.split()[1])
    return None


def http_post(url, fields, timeout=60.0):
    """(status, body bytes) of a form POST; status 0 when there was no HTTP answer."""
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def prometheus_has_series(url, query):
    status_code, body, _ = http_get(url + "/api/v1/query?query=" + urllib.parse.quote(query))
    return status_code == 200 and b'"result":[]' not in body


def start_agent(binary, prometheus_url, env, wrapper=()):
    port = free_port()
    full = {"PROMETHEUS_URL": prometheus_url, "NAMESPACE": NAMESPACE,
            "LISTEN_ADDR": f"127.0.0.1:{port}", "RUST_LOG": "info", **env}
    process = start("agent", [binary], full, wrapper)
    url = f"http://127.0.0.1:{port}"
    wait_until("agent /livez", 30, lambda: http_get(url + "/livez")[0] == 200, process)
    return process, url


def agent_metrics(url):
    """The agent's /agent/metrics as {"name{labels}": value}."""
    status_code, body, _ = http_get(url + "/agent/metrics")
    if status_code != 200:
        return {}
    figures = {}
    for line in body.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                figures[name] = float(value)
            except ValueError:
                pass
    return figures


def csv_rows(url, path):
    """Data rows of a CSV download (header excluded)."""
    status_code, body, _ = http_get(url + path, timeout=30)
    if status_code != 200:
        return None
    return max(body.count(b"\n") - 1, 0)

