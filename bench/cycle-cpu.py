#!/usr/bin/env python3
"""Cycle CPU benchmark: CPU per cycle and threads spawned per cycle on the 3-node demo stack.

    python3 bench/cycle-cpu.py
    python3 bench/cycle-cpu.py --measure 120 --strace-seconds 30

Starts the synthetic exporter (the small 3-node cluster), a real Prometheus scraping it every
second and the agent (release build) at UPDATE_INTERVAL=1s, WINDOW=10s, on free loopback
ports, and stops them at the end. Three phases, one after the other so that none disturbs
another's figures:

  1. CPU: utime+stime of the agent (and of Prometheus) over --measure seconds, divided by the
     cycles run (prometheus_agent_cycles_total).
  2. Threads seen: /proc/<pid>/task sampled every 2 ms; new thread ids per cycle are a lower
     bound of the threads spawned.
  3. Threads spawned: `strace -f -e trace=clone,clone3` attached to the agent, counting the
     clones that created a thread, per cycle (skipped with a message if strace is missing).
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import time

import benchlib as b

# strace -f lines start with the calling thread's id; a clone that made a thread returns its id.
CLONE = re.compile(r"^(\d+)\s+(?:clone3?\(|<\.\.\. clone3? resumed>).*= (\d+)(?:\s|$)")


def thread_name(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "ended"


def cycles(url):
    return b.agent_metrics(url).get("prometheus_agent_cycles_total", 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", type=float, default=120.0,
                    help="seconds of CPU measurement (/proc counts 10 ms ticks)")
    ap.add_argument("--sample-seconds", type=float, default=10.0,
                    help="seconds of /proc/<pid>/task sampling")
    ap.add_argument("--strace-seconds", type=float, default=20.0)
    ap.add_argument("--update-interval", default="1s")
    ap.add_argument("--convention", default="a")
    args = ap.parse_args()

    paths = b.build(["synthetic_exporter"])
    exporter, exporter_url = b.start_exporter(paths["synthetic_exporter"], [], args.convention)
    prometheus, prometheus_url = b.start_prometheus([exporter_url], "1s")
    b.wait_until("Prometheus rates", 60, lambda: b.prometheus_has_series(
        prometheus_url, "rate(container_cpu_usage_seconds_total[10s])"), prometheus)
    agent, url = b.start_agent(paths["agent"], prometheus_url,
                               {"UPDATE_INTERVAL": args.update_interval, "WINDOW": "10s"})
    b.say("waiting 12 s for a whole window and a few cycles...")
    time.sleep(12)

    # 1. CPU per cycle.
    b.say(f"measuring CPU for {args.measure:.0f} s...")
    c0, a0, p0 = cycles(url), b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    time.sleep(args.measure)
    c1, a1, p1 = cycles(url), b.cpu_seconds(agent.pid), b.cpu_seconds(prometheus.pid)
    n = c1 - c0
    if n <= 0:
        b.die("no cycle completed")

    # 2. Distinct thread ids seen.
    b.say(f"sampling /proc/{agent.pid}/task every 2 ms for {args.sample_seconds:.0f} s...")
    tasks = f"/proc/{agent.pid}/task"
    resting = set(os.listdir(tasks))
    seen = set(resting)
    c2 = cycles(url)
    end = time.monotonic() + args.sample_seconds
    while time.monotonic() < end:
        try:
            seen.update(os.listdir(tasks))
        except OSError:
            break
        time.sleep(0.002)
    sampled_cycles = cycles(url) - c2
    new_threads = len(seen - resting)

    # 3. strace.
    strace = shutil.which("strace")
    spawned = None
    if strace is None:
        b.say("strace not found: install it (apt-get install strace) to count the threads "
              "spawned per cycle; only the /proc sampling below is reported")
    else:
        out = os.path.join(b.workdir(), "strace.txt")
        command = [strace, "-f", "-qq", "-e", "trace=clone,clone3", "-o", out,
                   "-p", str(agent.pid)]
        b.say("$ " + " ".join(command) + f"   # for {args.strace_seconds:.0f} s")
        tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
        c3 = cycles(url)
        time.sleep(args.strace_seconds)
        traced_cycles = cycles(url) - c3
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
        with open(out, errors="replace") as f:
            created = [m for m in (CLONE.search(line) for line in f) if m and int(m.group(2)) > 0]
        by_caller = collections.Counter(m.group(1) for m in created)
        callers = ", ".join(f"{n} by thread {tid} ({thread_name(agent.pid, tid)}, "
                            f"{n / max(traced_cycles, 1):.1f} per cycle)"
                            for tid, n in by_caller.most_common())
        spawned = (len(created), traced_cycles, callers)

    b.say()
    b.say(f"3-node demo stack, UPDATE_INTERVAL={args.update_interval}, WINDOW=10s")
    b.say(f"cycles measured:             {n:.0f} in {args.measure:.0f} s")
    b.say(f"agent CPU per cycle:         {1000 * (a1 - a0) / n:.2f} ms "
          f"({a1 - a0:.2f} s CPU; /proc ticks are {1000 / b.TICK:.0f} ms)")
    b.say(f"Prometheus CPU per cycle:    {1000 * (p1 - p0) / n:.2f} ms (scraping included)")
    b.say(f"agent threads at rest:       {len(resting)}")
    b.say(f"new thread ids seen (/proc): {new_threads} in {sampled_cycles:.0f} cycles "
          f"= {new_threads / max(sampled_cycles, 1):.1f} per cycle (a lower bound)")
    if spawned:
        b.say(f"threads spawned (strace):    {spawned[0]} in {spawned[1]:.0f} cycles "
              f"= {spawned[0] / max(spawned[1], 1):.1f} per cycle (cycles slowed by tracing)")
        b.say(f"  spawned {spawned[2]}")


if __name__ == "__main__":
    main()
