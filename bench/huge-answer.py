#!/usr/bin/env python3
"""Huge-answer benchmark: the agent against a stand-in Prometheus whose every answer is huge.

    python3 bench/huge-answer.py                      # 400,000 series (about 46 MB) per answer
    python3 bench/huge-answer.py --mem-cap-mb 64      # as in a pod with a 64Mi limit

The stand-in (examples/standin_prometheus.rs) answers every query with --series series,
generated while sent. The agent (release build) runs under a memory cap so that it cannot
take the machine's memory: its RSS is sampled every 50 ms and the agent is killed once it
exceeds --mem-cap-mb (optionally also `prlimit --as`). Meanwhile /livez and /readyz are
probed every second. Prints the peak RSS, whether the agent stayed up (or when it was
killed), how fast the probes answered, and how long the first cycle took.
"""
import argparse
import statistics
import threading
import time

import benchlib as b


class Probes(threading.Thread):
    """Probes /livez, /readyz and /agent/metrics once a second."""

    def __init__(self, url, started):
        super().__init__(daemon=True)
        self.url, self.started = url, started
        self.results = {"/livez": [], "/readyz": []}  # (status, seconds)
        self.first_cycle = None  # (seconds since start, cycle duration)
        self.cycles = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for path, results in self.results.items():
                status, _, seconds = b.http_get(self.url + path, timeout=2.0)
                results.append((status, seconds))
            figures = b.agent_metrics(self.url)
            self.cycles = int(figures.get("prometheus_agent_cycles_total", self.cycles))
            if self.cycles >= 1 and self.first_cycle is None:
                self.first_cycle = (time.monotonic() - self.started,
                                    figures.get("prometheus_agent_last_cycle_duration_seconds", 0.0))
            self.stopping.wait(1.0)


def describe(path, results):
    answered = [s for status, s in results if status != 0]
    codes = sorted({status for status, _ in results})
    if not answered:
        return f"{path}: no answer to {len(results)} probes"
    return (f"{path}: {len(answered)}/{len(results)} probes answered (statuses {codes}), "
            f"median {statistics.median(answered) * 1000:.1f} ms, "
            f"max {max(answered) * 1000:.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=400_000)
    ap.add_argument("--label-bytes", type=int, default=0)
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--content-length", action="store_true",
                    help="the stand-in sends Content-Length instead of chunked encoding")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds to watch the agent")
    ap.add_argument("--mem-cap-mb", type=int, default=1024,
                    help="kill the agent above this RSS (MiB)")
    ap.add_argument("--as-limit-mb", type=int, default=0,
                    help="also run the agent under prlimit --as (MiB; 0: off)")
    ap.add_argument("--update-interval", default="5s")
    args = ap.parse_args()

    paths = b.build(["standin_prometheus"])
    port = b.free_port()
    stand_in_args = [paths["standin_prometheus"], "--listen", f"127.0.0.1:{port}",
                     "--series", str(args.series), "--label-bytes", str(args.label_bytes),
                     "--nodes", str(args.nodes)]
    if args.content_length:
        stand_in_args.append("--content-length")
    stand_in = b.start("standin", stand_in_args)
    stand_in_url = f"http://127.0.0.1:{port}"
    b.wait_until("stand-in", 60, lambda: b.http_get(stand_in_url + "/-/ready")[0] == 200,
                 stand_in)
    b.say(b.log_tail(stand_in, 5).strip())

    wrapper = ()
    if args.as_limit_mb:
        wrapper = ("prlimit", f"--as={args.as_limit_mb * 2**20}", "--")
    started = time.monotonic()
    agent, agent_url = b.start_agent(paths["agent"], stand_in_url,
                                     {"UPDATE_INTERVAL": args.update_interval}, wrapper)
    probes = Probes(agent_url, started)
    probes.start()

    cap = args.mem_cap_mb * 2**20
    peak, killed = 0, None
    deadline = started + args.duration
    while time.monotonic() < deadline and agent.poll() is None:
        try:
            figures = b.status(agent.pid)
        except OSError:
            break
        peak = max(peak, figures.get("VmHWM", 0), figures.get("VmRSS", 0))
        if figures.get("VmRSS", 0) > cap:
            agent.kill()
            killed = (time.monotonic() - started, figures["VmRSS"])
            break
        time.sleep(0.05)
    if agent.poll() is None:
        try:
            peak = max(peak, b.status(agent.pid).get("VmHWM", 0))
        except OSError:
            pass
    alive = agent.poll() is None
    probes.stopping.set()
    probes.join(5)

    b.say()
    b.say(f"answer: {args.series} series per query; agent UPDATE_INTERVAL={args.update_interval}, "
          f"memory cap {args.mem_cap_mb} MiB"
          + (f", prlimit --as {args.as_limit_mb} MiB" if args.as_limit_mb else ""))
    b.say(f"agent peak RSS:   {b.mib(peak)}")
    if killed:
        b.say(f"agent:            KILLED by the benchmark after {killed[0]:.1f} s at RSS "
              f"{b.mib(killed[1])} (over the {args.mem_cap_mb} MiB cap)")
    elif alive:
        b.say(f"agent:            up after {args.duration:.0f} s")
    else:
        b.say(f"agent:            EXITED (status {agent.returncode}, not stopped by the "
              f"benchmark; see its log) after {time.monotonic() - started:.1f} s")
    for path, results in probes.results.items():
        b.say("probe " + describe(path, results))
    if probes.first_cycle:
        b.say(f"first cycle:      done {probes.first_cycle[0]:.1f} s after the agent started "
              f"(cycle duration {probes.first_cycle[1]:.1f} s); "
              f"{probes.cycles} cycles in all")
    else:
        b.say(f"first cycle:      not done after {time.monotonic() - started:.1f} s")
    b.say("agent log (last lines):")
    b.say(b.log_tail(agent, 8).rstrip())


if __name__ == "__main__":
    main()
