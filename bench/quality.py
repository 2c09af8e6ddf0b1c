#!/usr/bin/env python3
"""Data-quality benchmark: what `/quality`, energy rows and `problems=1` cost the agent and
Prometheus.

    python3 bench/quality.py                       # every part, defaults below
    python3 bench/quality.py --parts small         # 24 h at 1 s of the 3-node cluster only
    python3 bench/quality.py --parts scaled --scaled-span 1800
    python3 bench/quality.py --parts cycle,cycle-scaled --measure 120 --rounds 5

Parts (`--parts`, comma-separated; default all four, in this order):

  small         The 3-node synthetic cluster with `--small-span` (default 24 h) of past
                scraped every `--small-interval` (1 s), written as TSDB blocks with promtool
                (`examples/backfill.rs`, as `bench/history-export.sh` does); the exporter then
                continues the same series and a real Prometheus keeps scraping it. The release
                agent (UPDATE_INTERVAL=5s, WINDOW=10s) polls it live. Each round asks
                `/quality`, `/energy/nodes` and `/energy/pods` over the whole past (its last
                `--small-span` seconds, ending at the last backfilled scrape).
  scaled        The same with the large generated cluster (`--nodes` 200, `--pods` 2,000 in
                the namespace, `--other-pods` 2,000 elsewhere) and `--scaled-span` (1 h) of
                past at `--scaled-interval` (5 s); agent UPDATE_INTERVAL=5s, WINDOW=1m; the
                same three requests (`--scaled-paths`).
  cycle         `problems=1` per cycle on the 3-node demo stack (synthetic exporter, Prometheus
                scraping every second, agent UPDATE_INTERVAL=1s, WINDOW=10s).
  cycle-scaled  The same at 200 nodes + 2,000 pods (+2,000 elsewhere), 5 s scrapes,
                UPDATE_INTERVAL=5s, WINDOW=1m.

Per request (past parts), `--rounds` times each, medians with their range:
  - wall time, HTTP status, bytes and rows of the answer (and the findings by problem);
  - the agent's CPU (utime+stime from /proc/<pid>/stat) during the request, and the part
    above its own live polling (its CPU rate over `--baseline` seconds just before, times
    the request's wall time, subtracted);
  - Prometheus's CPU likewise: in all, and above its baseline (scraping and the agent's live
    queries), which is what answering the request cost it;
  - the agent's RSS: idle (VmRSS before the first request, after `--idle` seconds of live
    polling), the peak VmRSS sampled every 10 ms during the request, VmHWM before and after.
Prometheus first compacts the backfilled blocks; the rounds start once its compaction
counter has been still for a minute.

Per cycle (`cycle` parts): each round starts a fresh agent (nobody has asked for problems
yet), connects one chunked-HTTP stream of node rows (`/metrics/nodes?size=0`) and measures
`--measure` seconds: the agent's and Prometheus's CPU per cycle, cycles counted as the
distinct observation times the stream received. Then it replaces that stream with
`/metrics/nodes?size=0&problems=1`, which arms the per-cycle computation, waits a few cycles
and measures as long again. The difference per cycle is what `problems=1` costs; each phase
has exactly one stream client, so the stream's own cost cancels out. `/agent/metrics` is
never read (a scrape of it computes the newest cycle's problems). The problems fields the
stream received are counted; on the clean cluster they name only what it truly lacks.

Every process runs on free loopback ports and is stopped at the end; each command is
printed. `BENCH_KEEP=1` keeps the work directory (logs, Prometheus data).
"""
import argparse
import collections
import csv
import http.client
import io
import os
import re
import shutil
import statistics
import threading
import time

import benchlib as b

PROBLEMS = ("gap", "absent", "reset", "implausible", "zero", "estimated", "stale", "partial",
            "duplicate")


# --- small helpers ----------------------------------------------------------------------

def median_range(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def kib_to_mib(kb):
    return kb / 1024.0


def status_kb(pid):
    figures = b.status(pid)
    return figures["VmRSS"] // 1024, figures["VmHWM"] // 1024


def metric_value(url, name):
    """A sample of a server's /metrics (the sum over its label sets)."""
    status_code, body, _ = b.http_get(url + "/metrics", timeout=30)
    if status_code != 200:
        return None
    total = None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


class RssSampler(threading.Thread):
    """The highest VmRSS of a process, sampled every 10 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self):
        path = f"/proc/{self.pid}/status"
        while not self.done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                            break
            except OSError:
                return
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak_kb


def rates(agent, prometheus, seconds):
    """CPU seconds per second of the agent and of Prometheus over `seconds`."""
    t0, a0, p0 = time.monotonic(), b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return ((b.cpu_seconds(agent.pid) - a0) / dt, (b.cpu_seconds(prometheus.pid) - p0) / dt)


# --- past parts: /quality and energy over a backfilled past -----------------------------

def backfill(paths, span, interval, cluster_args):
    """Backfilled TSDB blocks and the exporter continuing them: (process, exporter URL,
    from_ms, to_ms, samples, data directory, seconds it took)."""
    data = os.path.join(b.workdir(), f"data-{len(os.listdir(b.workdir()))}")
    port = b.free_port()
    began = time.monotonic()
    process = b.start("backfill", [paths["backfill"], "--data", data, "--span", str(span),
                                   "--interval", str(interval), *cluster_args,
                                   "--serve", f"127.0.0.1:{port}"])
    b.say(f"backfilling {span} s of scrapes every {interval} s (this takes a while)...")

    def served():
        with open(process.bench_log, errors="replace") as f:
            text = f.read()
        return text if "SERVING=" in text else None

    text = b.wait_until("backfill", 4 * 3600, served, process)
    took = time.monotonic() - began
    fields = dict(re.findall(r"(FROM_MS|TO_MS|SAMPLES)=(\d+)", text))
    line = next((l for l in text.splitlines() if l.startswith("backfill:")), "")
    b.say(f"{line} (in all {took:.0f} s with promtool); "
          f"{du(data) / 2**20:.0f} MiB of blocks")
    return (process, f"http://127.0.0.1:{port}", int(fields["FROM_MS"]), int(fields["TO_MS"]),
            int(fields["SAMPLES"]), data, took)


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def wait_for_compaction(prometheus, url):
    """Waits until Prometheus has compacted the backfilled blocks: its compaction counter
    unchanged for a minute, at least 75 s after its start (the first run is after 1 min)."""
    b.say("waiting for Prometheus to compact the backfilled blocks...")
    began = time.monotonic()
    time.sleep(75)
    last = metric_value(url, "prometheus_tsdb_compactions_total")
    still_since = time.monotonic()
    while time.monotonic() - still_since < 60:
        if prometheus.poll() is not None:
            b.die(f"Prometheus exited:\n{b.log_tail(prometheus)}")
        time.sleep(10)
        now = metric_value(url, "prometheus_tsdb_compactions_total")
        if now != last:
            last, still_since = now, time.monotonic()
    blocks = metric_value(url, "prometheus_tsdb_blocks_loaded")
    b.say(f"compactions done: {last:.0f} in {time.monotonic() - began:.0f} s, "
          f"{blocks:.0f} blocks loaded")


def summarize_findings(body):
    """(rows, {problem: count}, [(table, row, column, problem)]) of a /quality answer."""
    rows = list(csv.reader(io.StringIO(body.decode(errors="replace"))))[1:]
    counts = collections.Counter(r[4] for r in rows if len(r) > 4)
    cells = sorted({(r[0], r[1] if r[0] == "nodes" else r[2], r[3], r[4])
                    for r in rows if len(r) > 4})
    return len(rows), counts, cells


def summarize_energy(body):
    """(rows, {problems field: rows}) of an energy answer."""
    rows = list(csv.reader(io.StringIO(body.decode(errors="replace"))))
    if not rows:
        return 0, {}
    at = rows[0].index("problems") if "problems" in rows[0] else None
    fields = collections.Counter(r[at] for r in rows[1:] if at is not None and len(r) > at)
    return len(rows) - 1, fields


def cycle_rows(url):
    """Rows of the newest buffered cycle, per table ("200 nodes + 2000 pods")."""
    counts = []
    for table in ("nodes", "pods"):
        status_code, body, _ = b.http_get(f"{url}/{table}", timeout=60)
        rows = list(csv.reader(io.StringIO(body.decode(errors="replace"))))[1:]
        newest = max((r[2] for r in rows if len(r) > 2), default=None)
        counts.append(f"{sum(1 for r in rows if len(r) > 2 and r[2] == newest)} {table}")
    return " + ".join(counts)


def measure_request(agent, agent_url, prometheus, path, baseline_seconds, timeout):
    agent_rate, prometheus_rate = rates(agent, prometheus, baseline_seconds)
    rss0, hwm0 = status_kb(agent.pid)
    sampler = RssSampler(agent.pid)
    a0, p0 = b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    sampler.start()
    status_code, body, wall = b.http_get(agent_url + path, timeout=timeout)
    peak = sampler.stop()
    a1, p1 = b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    rss1, hwm1 = status_kb(agent.pid)
    return {
        "status": status_code, "body": body, "wall": wall,
        "agent_cpu": a1 - a0, "agent_above": (a1 - a0) - agent_rate * wall,
        "prometheus_cpu": p1 - p0, "prometheus_above": (p1 - p0) - prometheus_rate * wall,
        "agent_rate": agent_rate, "prometheus_rate": prometheus_rate,
        "rss_before": rss0, "peak": max(peak, rss0, rss1), "hwm_before": hwm0, "hwm_after": hwm1,
    }


def past_part(name, paths, args, span, interval, cluster_args, agent_env, request_paths):
    b.say()
    b.say(f"=== {name}: /quality and energy over {span} s of past at a {interval} s scrape "
          f"interval ===")
    margin = max(60, 12 * interval)
    exporter, exporter_url, from_ms, to_ms, samples, data, took = backfill(
        paths, span + margin, interval, cluster_args)
    prometheus, prometheus_url = b.start_prometheus([exporter_url], f"{interval}s", data=data,
                                                    retention="30d")
    wait_for_compaction(prometheus, prometheus_url)
    agent, agent_url = b.start_agent(paths["agent"], prometheus_url,
                                     {"RUST_LOG": "warn", **agent_env})
    b.wait_until("agent ready", 300, lambda: b.http_get(agent_url + "/readyz")[0] == 200, agent)
    b.say(f"agent polling live for {args.idle:.0f} s (idle)...")
    time.sleep(args.idle)
    idle_kb, idle_hwm_kb = status_kb(agent.pid)
    per_cycle = cycle_rows(agent_url)
    start_s, end_s = (to_ms - span * 1000) / 1000, to_ms / 1000
    query = f"start={start_s:.0f}&end={end_s:.0f}"
    results = collections.defaultdict(list)
    for round_number in range(1, args.rounds + 1):
        for path in request_paths:
            url_path = f"/{path}?{query}"
            r = measure_request(agent, agent_url, prometheus, url_path, args.baseline,
                                args.request_timeout)
            results[path].append(r)
            extra = ""
            if r["status"] == 200 and path == "quality":
                rows, counts, _ = summarize_findings(r["body"])
                extra = f", {rows} findings " + (str(dict(counts)) if counts else "")
            elif r["status"] == 200:
                rows, fields = summarize_energy(r["body"])
                extra = f", {rows} rows, problems fields {dict(fields)}"
            else:
                extra = f": {r['body'][:300].decode(errors='replace').strip()}"
            b.say(f"round {round_number}: GET {url_path} -> HTTP {r['status']} in "
                  f"{r['wall']:.2f} s, {len(r['body'])} bytes{extra}; CPU agent "
                  f"{r['agent_cpu']:.2f} s, Prometheus {r['prometheus_cpu']:.2f} s; "
                  f"RSS peak {kib_to_mib(r['peak']):.1f} MiB")
            if agent.poll() is not None:
                b.die(f"the agent exited ({agent.returncode}):\n{b.log_tail(agent)}")
    warnings = [l for l in b.log_tail(agent, 200).splitlines() if "WARN" in l or "ERROR" in l]

    b.say()
    b.say(f"{name}: {samples} samples backfilled in {took:.0f} s, "
          f"{du(data) / 2**20:.0f} MiB of blocks; window {query} ({span} s); "
          f"{per_cycle} rows per cycle; agent {', '.join(f'{k}={v}' for k, v in agent_env.items())}")
    b.say(f"agent idle: VmRSS {kib_to_mib(idle_kb):.1f} MiB, VmHWM {kib_to_mib(idle_hwm_kb):.1f} MiB")
    for path in request_paths:
        rs = results[path]
        ok = [r for r in rs if r["status"] == 200]
        b.say(f"GET /{path}?{query}: HTTP {sorted({r['status'] for r in rs})}, "
              f"{median_range([len(r['body']) for r in rs], '{:.0f}')} bytes")
        b.say(f"  wall time                {median_range([r['wall'] for r in rs])} s")
        b.say(f"  agent CPU                {median_range([r['agent_cpu'] for r in rs])} s "
              f"(above its live polling {median_range([r['agent_above'] for r in rs])} s)")
        b.say(f"  Prometheus CPU           {median_range([r['prometheus_cpu'] for r in rs])} s "
              f"(above its baseline {median_range([r['prometheus_above'] for r in rs])} s; "
              f"baseline {median_range([1000 * r['prometheus_rate'] for r in rs], '{:.0f}')} ms/s)")
        b.say(f"  agent RSS peak (sampled) {median_range([kib_to_mib(r['peak']) for r in rs], '{:.1f}')} MiB, "
              f"above idle {median_range([kib_to_mib(r['peak'] - idle_kb) for r in rs], '{:.1f}')} MiB; "
              f"VmHWM after {median_range([kib_to_mib(r['hwm_after']) for r in rs], '{:.1f}')} MiB")
        if ok and path == "quality":
            _, counts, cells = summarize_findings(ok[0]["body"])
            b.say(f"  findings (first answer): {dict(counts) or 'none'}")
            for cell in cells[:20]:
                b.say(f"    {','.join(cell)}")
            if len(cells) > 20:
                b.say(f"    ... {len(cells) - 20} more cells")
        elif ok:
            _, fields = summarize_energy(ok[0]["body"])
            b.say(f"  problems fields (first answer): {dict(fields)}")
    b.say(f"agent VmHWM at the end: {kib_to_mib(status_kb(agent.pid)[1]):.1f} MiB "
          f"(idle VmRSS {kib_to_mib(idle_kb):.1f} MiB)")
    if warnings:
        b.say("agent warnings:")
        for line in warnings[-10:]:
            b.say(f"  {line}")
    for process in (agent, prometheus, exporter):
        b.stop(process)
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(data, ignore_errors=True)


# --- cycle parts: problems=1 per cycle ---------------------------------------------------

class StreamClient(threading.Thread):
    """A chunked-HTTP stream of rows: when each observation time arrived, and the problems
    fields received."""

    def __init__(self, url, path):
        super().__init__(daemon=True)
        host, port = url.split("//")[1].split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=3600)
        self.connection.request("GET", path)
        self.sock = self.connection.sock  # the response takes it over
        self.response = self.connection.getresponse()
        if self.response.status != 200:
            b.die(f"GET {path}: HTTP {self.response.status} {self.response.read(300)!r}")
        self.arrivals = []  # (monotonic time, observation time)
        self.problems = collections.Counter()
        self.header = None

    def run(self):
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                fields = line.decode(errors="replace").rstrip("\n").split(",")
                if self.header is None:
                    self.header = fields
                    continue
                self.arrivals.append((time.monotonic(), fields[2]))
                if self.header[-1] == "problems":
                    self.problems[f"{fields[0]}: {fields[-1] or '(clean)'}"] += 1
        except (OSError, ValueError, http.client.HTTPException):
            return

    def cycles_between(self, t0, t1):
        return len({at for when, at in self.arrivals if t0 <= when < t1})

    def close(self):
        try:
            self.sock.shutdown(2)
        except OSError:
            pass
        self.join(5)
        self.sock.close()


def measure_phase(agent, prometheus, stream, seconds):
    t0, a0, p0 = time.monotonic(), b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    time.sleep(seconds)
    t1, a1, p1 = time.monotonic(), b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    time.sleep(0.5)  # the last cycle's rows in flight
    cycles = stream.cycles_between(t0, t1)
    if cycles <= 0:
        b.die("no cycle arrived on the stream during the measurement")
    return {"cycles": cycles, "agent_ms": 1000 * (a1 - a0) / cycles,
            "prometheus_ms": 1000 * (p1 - p0) / cycles, "seconds": t1 - t0}


def cycle_part(name, paths, args, exporter_args, scrape_interval, agent_env, window_secs):
    b.say()
    b.say(f"=== {name}: problems=1 per cycle ===")
    exporter, exporter_url = b.start_exporter(paths["synthetic_exporter"], exporter_args, "a",
                                              window_secs)
    prometheus, prometheus_url = b.start_prometheus([exporter_url], scrape_interval)
    b.wait_until("Prometheus rates", 300, lambda: b.prometheus_has_series(
        prometheus_url, f"rate(container_cpu_usage_seconds_total[{window_secs}s])"), prometheus)
    b.say(f"waiting {window_secs + 5} s for Prometheus to cover a whole window...")
    time.sleep(window_secs + 5)
    interval = float(agent_env["UPDATE_INTERVAL"].rstrip("s"))
    rounds = []
    for round_number in range(1, args.rounds + 1):
        agent, agent_url = b.start_agent(paths["agent"], prometheus_url,
                                         {"RUST_LOG": "warn", **agent_env})
        b.wait_until("agent ready", 300, lambda: b.http_get(agent_url + "/readyz")[0] == 200,
                     agent)
        plain = StreamClient(agent_url, "/metrics/nodes?size=0")
        plain.start()
        time.sleep(max(3 * interval, 5))
        without = measure_phase(agent, prometheus, plain, args.measure)
        plain.close()
        asked = StreamClient(agent_url, "/metrics/nodes?size=0&problems=1")
        asked.start()
        time.sleep(max(3 * interval, 5))
        with_problems = measure_phase(agent, prometheus, asked, args.measure)
        asked.close()
        rss, hwm = status_kb(agent.pid)
        log = b.log_tail(agent, 200)
        failed = [l for l in log.splitlines() if "data problems" in l]
        b.stop(agent)
        result = {"without": without, "with": with_problems, "rss": rss, "hwm": hwm,
                  "problems": asked.problems, "failed": failed}
        rounds.append(result)
        b.say(f"round {round_number}: without problems {without['cycles']} cycles, agent "
              f"{without['agent_ms']:.2f} ms, Prometheus {without['prometheus_ms']:.2f} ms per "
              f"cycle; with a problems=1 stream {with_problems['cycles']} cycles, agent "
              f"{with_problems['agent_ms']:.2f} ms, Prometheus "
              f"{with_problems['prometheus_ms']:.2f} ms per cycle; VmHWM {kib_to_mib(hwm):.1f} MiB"
              + (f"; {len(failed)} failures logged" if failed else ""))
    b.say()
    b.say(f"{name}: exporter {' '.join(exporter_args) or '(3-node cluster)'}, scrapes every "
          f"{scrape_interval}, agent {', '.join(f'{k}={v}' for k, v in agent_env.items())}; "
          f"{args.rounds} rounds of {args.measure:.0f} s per phase")
    for key, label in (("agent_ms", "agent CPU per cycle"),
                       ("prometheus_ms", "Prometheus CPU per cycle")):
        b.say(f"{label:26} without {median_range([r['without'][key] for r in rounds])} ms, "
              f"with problems=1 {median_range([r['with'][key] for r in rounds])} ms, "
              f"difference {median_range([r['with'][key] - r['without'][key] for r in rounds])} ms")
    b.say(f"cycles per phase           {median_range([r['without']['cycles'] for r in rounds], '{:.0f}')}"
          f" / {median_range([r['with']['cycles'] for r in rounds], '{:.0f}')}")
    b.say(f"agent VmHWM at the end     {median_range([kib_to_mib(r['hwm']) for r in rounds], '{:.1f}')} MiB")
    fields = collections.Counter()
    for r in rounds:
        fields.update(r["problems"])
    b.say("problems fields received (rows, all rounds):")
    for field, n in sorted(fields.items()):
        b.say(f"  {n:6d}  {field}")
    for r in rounds:
        for line in r["failed"][-5:]:
            b.say(f"  logged: {line}")
    for process in (prometheus, exporter):
        b.stop(process)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="small,scaled,cycle,cycle-scaled")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small-span", type=int, default=86400, help="seconds of past")
    ap.add_argument("--small-interval", type=int, default=1, help="scrape interval, seconds")
    ap.add_argument("--scaled-span", type=int, default=3600)
    ap.add_argument("--scaled-interval", type=int, default=5)
    ap.add_argument("--scaled-paths", default="quality,energy/nodes,energy/pods")
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--pods", type=int, default=2000, help="pods in the experiment namespace")
    ap.add_argument("--other-pods", type=int, default=2000, help="pods in another namespace")
    ap.add_argument("--idle", type=float, default=20.0,
                    help="seconds of live polling before the idle RSS")
    ap.add_argument("--baseline", type=float, default=20.0,
                    help="seconds of CPU baseline before each request")
    ap.add_argument("--request-timeout", type=float, default=1800.0)
    ap.add_argument("--measure", type=float, default=120.0,
                    help="seconds per phase of the cycle parts")
    args = ap.parse_args()
    parts = args.parts.split(",")
    unknown = set(parts) - {"small", "scaled", "cycle", "cycle-scaled"}
    if unknown:
        b.die(f"unknown parts {sorted(unknown)}")

    paths = b.build(["synthetic_exporter", "backfill"])
    scaled = ["--nodes", str(args.nodes), "--pods", str(args.pods),
              "--other-pods", str(args.other_pods)]
    all_paths = "quality,energy/nodes,energy/pods".split(",")
    if "small" in parts:
        past_part("small", paths, args, args.small_span, args.small_interval, [],
                  {"UPDATE_INTERVAL": "5s", "WINDOW": "10s"}, all_paths)
    if "scaled" in parts:
        past_part("scaled", paths, args, args.scaled_span, args.scaled_interval, scaled,
                  {"UPDATE_INTERVAL": "5s", "WINDOW": "1m"}, args.scaled_paths.split(","))
    if "cycle" in parts:
        cycle_part("cycle", paths, args, [], "1s",
                   {"UPDATE_INTERVAL": "1s", "WINDOW": "10s"}, 10)
    if "cycle-scaled" in parts:
        cycle_part("cycle-scaled", paths, args, scaled, "5s",
                   {"UPDATE_INTERVAL": "5s", "WINDOW": "1m", "BUFFER_SIZE": "100"}, 60)


if __name__ == "__main__":
    main()
