#!/usr/bin/env python3
"""Scale benchmark: the agent against a real Prometheus scraping a large synthetic cluster.

    python3 bench/scale.py                                   # 200 nodes, 2,000 + 2,000 pods
    python3 bench/scale.py --nodes 5000 --pods 10000 --other-pods 10000 --scrape-interval 15s

Starts the synthetic exporter in scale mode, a real Prometheus scraping it and the agent
(release build, BUFFER_SIZE=100), all on free loopback ports, and stops them at the end.
Prometheus's CPU is measured twice over the same length of time: before the agent starts
(scraping only) and while the agent polls it; the difference is what answering the agent's
queries costs Prometheus. Prints:

  - the agent's peak RSS (VmHWM) and its RSS at the end
  - CPU per cycle (utime+stime / prometheus_agent_cycles_total) of the agent and of
    Prometheus over the same interval, and Prometheus's CPU above its scrape-only baseline
  - rows per cycle, and how many rows /nodes and /pods return
"""
import argparse
import time

import benchlib as b


def snapshot(agent, agent_url, prometheus):
    figures = b.agent_metrics(agent_url)
    return {
        "time": time.monotonic(),
        "agent_cpu": b.cpu_seconds(agent.pid),
        "prometheus_cpu": b.cpu_seconds(prometheus.pid),
        "cycles": figures.get("prometheus_agent_cycles_total", 0.0),
        "node_rows": figures.get('prometheus_agent_rows_total{table="nodes"}', 0.0),
        "pod_rows": figures.get('prometheus_agent_rows_total{table="pods"}', 0.0),
        "duration_sum": figures.get("prometheus_agent_cycle_duration_seconds_sum", 0.0),
        "missed": figures.get("prometheus_agent_ticks_missed_total", 0.0),
        "query_errors": sum(v for k, v in figures.items()
                            if k.startswith("prometheus_agent_query_errors_total")),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--pods", type=int, default=2000, help="pods in the experiment namespace")
    ap.add_argument("--other-pods", type=int, default=2000, help="pods in another namespace")
    ap.add_argument("--buffer-size", default="100")
    ap.add_argument("--update-interval", default="2s")
    ap.add_argument("--window", type=int, default=30, help="WINDOW in seconds")
    ap.add_argument("--scrape-interval", default="5s")
    ap.add_argument("--measure", type=float, default=60.0, help="seconds of measurement")
    ap.add_argument("--convention", default="a")
    args = ap.parse_args()

    paths = b.build(["synthetic_exporter"])
    exporter, exporter_url = b.start_exporter(
        paths["synthetic_exporter"],
        ["--nodes", str(args.nodes), "--pods", str(args.pods), "--other-pods", str(args.other_pods)],
        args.convention, args.window)
    began = time.monotonic()
    scrape_status, scrape, _ = b.http_get(exporter_url + "/metrics", timeout=60)
    render = time.monotonic() - began
    series = sum(1 for line in scrape.splitlines() if line and not line.startswith(b"#"))
    b.say(f"exporter: {series} series, {len(scrape) / 1e6:.1f} MB per scrape "
          f"(one scrape took {render * 1000:.0f} ms)")
    del scrape

    prometheus, prometheus_url = b.start_prometheus([exporter_url], args.scrape_interval)
    b.wait_until("Prometheus rates", 120, lambda: b.prometheus_has_series(
        prometheus_url, f"rate(container_cpu_usage_seconds_total[{args.window}s])"), prometheus)
    b.say(f"waiting {args.window} s for Prometheus to cover a whole window...")
    time.sleep(args.window)

    b.say(f"Prometheus alone (scraping only) for {args.measure:.0f} s...")
    p0 = b.cpu_seconds(prometheus.pid)
    time.sleep(args.measure)
    baseline = (b.cpu_seconds(prometheus.pid) - p0) / args.measure

    agent, agent_url = b.start_agent(paths["agent"], prometheus_url, {
        "BUFFER_SIZE": args.buffer_size, "UPDATE_INTERVAL": args.update_interval,
        "WINDOW": f"{args.window}s"})
    b.wait_until("two agent cycles", 300,
                 lambda: b.agent_metrics(agent_url).get("prometheus_agent_cycles_total", 0) >= 2,
                 agent)
    b.say(f"agent and Prometheus for {args.measure:.0f} s...")
    first = snapshot(agent, agent_url, prometheus)
    time.sleep(args.measure)
    last = snapshot(agent, agent_url, prometheus)
    memory = b.status(agent.pid)
    pods_rows = b.csv_rows(agent_url, "/pods")
    nodes_rows = b.csv_rows(agent_url, "/nodes")
    if agent.poll() is not None:
        b.die(f"the agent exited ({agent.returncode}):\n{b.log_tail(agent)}")

    d = {k: last[k] - first[k] for k in first}
    cycles = d["cycles"]
    if cycles <= 0:
        b.die("no cycle completed during the measurement")
    agent_ms = 1000 * d["agent_cpu"] / cycles
    prometheus_ms = 1000 * d["prometheus_cpu"] / cycles
    answering_ms = 1000 * (d["prometheus_cpu"] - baseline * d["time"]) / cycles
    b.say()
    b.say(f"cluster: {args.nodes} nodes, {args.pods} pods in {b.NAMESPACE}, "
          f"{args.other_pods} elsewhere; BUFFER_SIZE={args.buffer_size}, "
          f"UPDATE_INTERVAL={args.update_interval}, WINDOW={args.window}s, "
          f"scrape interval {args.scrape_interval}")
    b.say(f"agent peak RSS (VmHWM):            {b.mib(memory['VmHWM'])}")
    b.say(f"agent RSS at the end:              {b.mib(memory['VmRSS'])}, "
          f"{memory['Threads']} threads")
    b.say(f"cycles measured:                   {cycles:.0f} in {d['time']:.1f} s "
          f"(mean cycle {1000 * d['duration_sum'] / cycles:.0f} ms, "
          f"{d['missed']:.0f} ticks missed, {d['query_errors']:.0f} query errors)")
    b.say(f"agent CPU per cycle:               {agent_ms:.2f} ms")
    b.say(f"Prometheus CPU per cycle:          {prometheus_ms:.2f} ms "
          f"(scrape-only baseline {1000 * baseline:.1f} ms/s)")
    b.say(f"Prometheus CPU above its baseline: {answering_ms:.2f} ms per cycle "
          f"(answering the agent's queries)")
    if answering_ms > 0:
        b.say(f"agent / Prometheus answering:      {100 * agent_ms / answering_ms:.1f} %")
    b.say(f"rows per cycle:                    {d['node_rows'] / cycles:.0f} node rows, "
          f"{d['pod_rows'] / cycles:.0f} pod rows")
    b.say(f"rows returned:                     /nodes {nodes_rows}, /pods {pods_rows}")


if __name__ == "__main__":
    main()
