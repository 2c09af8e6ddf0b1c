#!/usr/bin/env python3
"""What the agent's queries cost the server, next to what the server does anyway.

    python3 bench/prometheus-cost.py                 # 200 nodes, 2,000 + 2,000 pods, 5 s scrapes
    python3 bench/prometheus-cost.py --before-agent OLD_BINARY --before-queries bench/queries-before.json

Starts the synthetic exporter in scale mode, a real Prometheus and a real VictoriaMetrics both
scraping it (every process on free loopback ports), and then, round after round, for each
server in turn:

  - the server alone (scraping, housekeeping) for --measure seconds;
  - the server with the agent (release build, UPDATE_INTERVAL=5s, WINDOW=1m) polling it for
    as long, after the agent's first two cycles (address look-ups done);
  - with --before-agent, the same with another agent binary (an older build), so that both
    builds are measured side by side in one run.

CPU is utime+stime of each process from /proc (10 ms ticks), so other load on the machine
changes the figures less than wall-clock ones; rounds alternate so that slow drifts (chunk
fill, compaction, other work on the machine) spread over every variant, and each figure is
the median of the rounds with its range. Per server it prints, per UPDATE_INTERVAL: its CPU
alone, with the agent, the difference (what answering the agent costs it) and that cost as
a multiple of the server's own work; and the agent's CPU per cycle and peak RSS.

Then, per column (--column-queries N, default 30; 0 skips it), on servers that no longer
scrape (their scrape configuration is emptied and reloaded, so that nothing but the queries
measured moves their CPU): each column's live query alone, sent N times back to back at a
time 15 s before scraping stopped (with nocache=1, as the agent sends it), CPU (ms) and
memory allocated (MB, go_memstats_alloc_bytes_total) per query, median of --rounds rounds.
The queries come from `examples/live_queries.rs` (the agent's own expansion), plus each
table's columns combined as the agent combines small tables; --before-queries takes a
QUERIES_FILE (e.g. `bench/queries-before.json`, the defaults before the query-cost changes)
measured in the same rounds. "live cycle" adds up what one cycle at this scale asks: the
node table combined before (1,000 rows or fewer were combined), column by column now (more
than 25 rows). For Prometheus each column also shows the samples it read (`stats=all`:
totalQueryableSamples). VictoriaMetrics has no such statistics in 1.79 (it ignores
`stats=all`; `trace=1` gives a text trace).
"""
import argparse
import json
import statistics
import subprocess
import time

import benchlib as b

ENGINES = ("prometheus", "victoria-metrics")


def median_range(values, fmt="{:.0f}"):
    if not values:
        return "-"
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += " [" + fmt.format(min(values)) + "-" + fmt.format(max(values)) + "]"
    return text


def live_queries(binary, window, queries_file=None):
    command = [binary, "--namespace", b.NAMESPACE, "--window", f"{window}s"]
    if queries_file:
        command += ["--queries-file", queries_file]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [tuple(json.loads(line)) for line in out.splitlines() if line.strip()]


def combined(queries, table):
    """A table's columns in one query, as the agent combines them (src/eval/plan.rs)."""
    parts = [f'label_replace(({promql}), "prometheus_agent_column", "{i}", "", "")'
             for i, (t, _, promql) in enumerate(q for q in queries if q[0] == table)]
    return " or ".join(parts)


def query(url, promql, extra=None, at=None):
    at = time.time() if at is None else at
    fields = {"query": promql, "time": f"{at:.3f}", "nocache": "1", **(extra or {})}
    return b.http_post(url + "/api/v1/query", fields)


def samples_read(url, promql, at):
    """Prometheus's totalQueryableSamples for one evaluation (None where not reported)."""
    status, body = query(url, promql, {"stats": "all"}, at)
    if status != 200:
        return None
    stats = json.loads(body).get("data", {}).get("stats") or {}
    return stats.get("samples", {}).get("totalQueryableSamples")


def server_window(server, seconds):
    c0, t0 = b.cpu_seconds(server.pid), time.monotonic()
    time.sleep(seconds)
    return b.cpu_seconds(server.pid) - c0, time.monotonic() - t0


def agent_window(binary, server, url, args):
    env = {"UPDATE_INTERVAL": f"{args.update_interval:g}s", "WINDOW": f"{args.window}s",
           "BUFFER_SIZE": "100"}
    agent, agent_url = b.start_agent(binary, url, env)
    b.wait_until("two agent cycles", 300,
                 lambda: b.agent_metrics(agent_url).get("prometheus_agent_cycles_total", 0) >= 2,
                 agent)
    first = b.agent_metrics(agent_url)
    a0, s0, t0 = b.cpu_seconds(agent.pid), b.cpu_seconds(server.pid), time.monotonic()
    time.sleep(args.measure)
    a1, s1, t1 = b.cpu_seconds(agent.pid), b.cpu_seconds(server.pid), time.monotonic()
    last = b.agent_metrics(agent_url)
    memory = b.status(agent.pid)
    if agent.poll() is not None:
        b.die(f"the agent exited ({agent.returncode}):\n{b.log_tail(agent)}")
    b.stop(agent)
    cycles = last.get("prometheus_agent_cycles_total", 0) - first.get("prometheus_agent_cycles_total", 0)
    errors = sum(v for k, v in last.items() if k.startswith("prometheus_agent_query_errors_total"))
    eval_seconds = {}
    for key, value in last.items():
        if key.startswith("prometheus_agent_query_eval_seconds_total{"):
            eval_seconds[key] = value - first.get(key, 0.0)
    return {"server_cpu": s1 - s0, "seconds": t1 - t0, "agent_cpu": a1 - a0, "cycles": cycles,
            "hwm": memory["VmHWM"], "errors": errors, "eval": eval_seconds}


def column_costs(server, url, queries, n, baseline_per_s, at):
    """CPU (ms) and memory allocated (MB) per query of each query alone, above the server's
    baseline, all evaluated at `at`."""
    costs = {}
    for table, column, promql in queries:
        status, body = query(url, promql, at=at)
        if status != 200 or b'"value"' not in body:
            b.die(f"{table}.{column}: HTTP {status}, no series at {at:.3f} for {promql}")
        a0 = b.go_allocated_bytes(url)
        c0, t0 = b.cpu_seconds(server.pid), time.monotonic()
        for _ in range(n):
            query(url, promql, at=at)
        cpu, seconds = b.cpu_seconds(server.pid) - c0, time.monotonic() - t0
        a1 = b.go_allocated_bytes(url)
        allocated = (a1 - a0) / n / 1e6 if a0 is not None and a1 is not None else None
        costs[(table, column)] = (1000 * (cpu - baseline_per_s * seconds) / n, allocated)
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--pods", type=int, default=2000, help="pods in the experiment namespace")
    ap.add_argument("--other-pods", type=int, default=2000, help="pods in another namespace")
    ap.add_argument("--scrape-interval", default="5s")
    ap.add_argument("--update-interval", type=float, default=5.0, help="UPDATE_INTERVAL, seconds")
    ap.add_argument("--window", type=int, default=60, help="WINDOW in seconds")
    ap.add_argument("--measure", type=float, default=60.0, help="seconds per measurement window")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="seconds of scraping before the first measurement (after a whole window)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--convention", default="a")
    ap.add_argument("--before-agent", help="another agent binary measured in the same rounds")
    ap.add_argument("--before-queries", help="a QUERIES_FILE measured per column beside the defaults")
    ap.add_argument("--column-queries", type=int, default=30,
                    help="queries per column and round (0: no per-column figures)")
    ap.add_argument("--skip-live", action="store_true",
                    help="no agent windows: only the per-column figures")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    for engine in engines:
        if engine not in ENGINES:
            b.die(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")

    paths = b.build(["synthetic_exporter", "live_queries"])
    variants = [("current", paths["agent"])]
    if args.before_agent:
        variants.append(("before", args.before_agent))
    query_sets = [("current", live_queries(paths["live_queries"], args.window))]
    if args.before_queries:
        query_sets.append(("before", live_queries(paths["live_queries"], args.window,
                                                  args.before_queries)))
    for _, queries in query_sets:
        queries += [(table, "(combined)", combined(queries, table)) for table in ("nodes", "pods")]
    # What one live cycle at this scale asks (src/eval/run.rs, COMBINED_ROWS_MAX).
    cycle_keys = {
        "current": [(t, c) for t, c, _ in query_sets[0][1] if c != "(combined)"],
        "before": [("nodes", "(combined)")] + [(t, c) for t, c, _ in query_sets[0][1]
                                              if t == "pods" and c != "(combined)"],
    }

    exporter, exporter_url = b.start_exporter(
        paths["synthetic_exporter"],
        ["--nodes", str(args.nodes), "--pods", str(args.pods), "--other-pods", str(args.other_pods)],
        args.convention, args.window)
    servers = {}
    if "prometheus" in engines:
        servers["prometheus"] = b.start_prometheus([exporter_url], args.scrape_interval)
    if "victoria-metrics" in engines:
        servers["victoria-metrics"] = b.start_victoria_metrics([exporter_url], args.scrape_interval)
    probe = f"rate(container_cpu_usage_seconds_total[{args.window}s])"
    for engine, (process, url) in servers.items():
        b.wait_until(f"{engine} rates", 180, lambda: b.http_post(url + "/api/v1/query", {
            "query": f"count({probe})", "nocache": "1"})[1].count(b'"value"') > 0, process)
    b.say(f"waiting {args.window + args.warmup:.0f} s: a whole window, then --warmup...")
    time.sleep(args.window + args.warmup)

    results = {e: {"alone": [], **{name: [] for name, _ in variants}} for e in servers}
    columns = {e: {name: {} for name, _ in query_sets} for e in servers}
    samples = {e: {name: {} for name, _ in query_sets} for e in servers}
    for round_ in range(0 if args.skip_live else args.rounds):
        for engine, (server, url) in servers.items():
            order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
            b.say(f"round {round_ + 1}/{args.rounds}, {engine}: alone {args.measure:.0f} s, then "
                  + ", ".join(f"agent {name}" for name, _ in order))
            cpu, seconds = server_window(server, args.measure)
            results[engine]["alone"].append(cpu / seconds)
            for name, binary in order:
                results[engine][name].append(agent_window(binary, server, url, args))
    if args.column_queries > 0:
        at = time.time() - 15
        for engine, (server, url) in servers.items():
            b.stop_scraping(server, url)
        b.say("scraping stopped; per column, on the idle servers...")
        time.sleep(10)
        for round_ in range(args.rounds):
            for engine, (server, url) in servers.items():
                cpu, seconds = server_window(server, 10)
                for name, queries in (query_sets if round_ % 2 == 0 else query_sets[::-1]):
                    costs = column_costs(server, url, queries, args.column_queries,
                                         cpu / seconds, at)
                    for key, cost in costs.items():
                        columns[engine][name].setdefault(key, []).append(cost)
                    if engine == "prometheus" and round_ == 0:
                        for table, column, promql in queries:
                            samples[engine][name][(table, column)] = samples_read(url, promql, at)

    interval = args.update_interval
    b.say()
    b.say(f"cluster: {args.nodes} nodes, {args.pods} pods in {b.NAMESPACE}, {args.other_pods} "
          f"elsewhere, convention {args.convention.upper()}; scrape interval {args.scrape_interval}; "
          f"agent UPDATE_INTERVAL={interval:g}s, WINDOW={args.window}s; {args.rounds} rounds of "
          f"{args.measure:.0f} s windows; medians [range]")
    for engine in servers:
        r = results[engine]
        alone = [1000 * x * interval for x in r["alone"]]
        b.say()
        b.say(f"{engine}: CPU per {interval:g} s")
        b.say(f"  alone (scraping, housekeeping):      {median_range(alone)} ms")
        for name, _ in variants:
            runs = r[name]
            with_agent = [1000 * w["server_cpu"] / w["seconds"] * interval for w in runs]
            cost = [w - a for w, a in zip(with_agent, alone)]
            ratio = [c / a for c, a in zip(cost, alone)]
            agent_ms = [1000 * w["agent_cpu"] / max(w["cycles"], 1) for w in runs]
            hwm = [w["hwm"] / 2**20 for w in runs]
            errors = sum(w["errors"] for w in runs)
            b.say(f"  with the {name} agent:")
            b.say(f"    server CPU:                        {median_range(with_agent)} ms")
            b.say(f"    answering the agent:               {median_range(cost)} ms "
                  f"= {median_range(ratio, '{:.2f}')}x the server's own work")
            b.say(f"    agent CPU per cycle:               {median_range(agent_ms, '{:.1f}')} ms; "
                  f"peak RSS {median_range(hwm, '{:.1f}')} MiB; {errors:.0f} query errors")
            evals = {}
            for w in runs:
                for key, value in w["eval"].items():
                    evals.setdefault(key, []).append(1000 * value / max(w["cycles"], 1))
            for key, values in sorted(evals.items()):
                table = key.split('table="')[1].split('"')[0]
                b.say(f"    Prometheus's own eval time, {table:5s}  {median_range(values, '{:.1f}')} ms "
                      f"per cycle (/agent/metrics)")
        if args.column_queries > 0:
            names = [name for name, _ in query_sets]
            b.say(f"  per query on the idle server (median of {args.rounds} rounds of "
                  f"{args.column_queries}): CPU ms, MB allocated"
                  + ("; samples read (stats=all)" if engine == "prometheus" else ""))
            header = "    {:24s}".format("query") + "".join(
                f"{n + ' ms':>20s}{n + ' MB':>12s}" for n in names)
            if engine == "prometheus":
                header += "".join(f"{'samples ' + n:>16s}" for n in names)
            b.say(header)
            keys = [(t, c) for t, c, _ in query_sets[0][1]]
            for _, queries in query_sets[1:]:
                keys += [(t, c) for t, c, _ in queries if (t, c) not in keys]

            def figures(n, key):
                runs = columns[engine][n].get(key) or []
                ms = [r[0] for r in runs]
                mb = [r[1] for r in runs if r[1] is not None]
                return ms, mb

            for key in keys:
                line = "    {:24s}".format(".".join(key))
                for n in names:
                    ms, mb = figures(n, key)
                    line += f"{median_range(ms, '{:.1f}'):>20s}{median_range(mb, '{:.2f}'):>12s}"
                if engine == "prometheus":
                    for n in names:
                        s = samples[engine][n].get(key)
                        line += f"{'-' if s is None else s:>16}"
                b.say(line)
            line = "    {:24s}".format("live cycle")
            for n in names:
                ms = mb = 0.0
                for key in cycle_keys[n]:
                    k_ms, k_mb = figures(n, key)
                    ms += statistics.median(k_ms) if k_ms else 0.0
                    mb += statistics.median(k_mb) if k_mb else 0.0
                line += f"{ms:>20.1f}{mb:>12.2f}"
            b.say(line)


if __name__ == "__main__":
    main()
