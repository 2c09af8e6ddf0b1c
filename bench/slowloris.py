#!/usr/bin/env python3
"""Slowloris benchmark: connection abuse against the agent's HTTP server.

Opens --connections connections (default 1,000): half stay idle, half send a request head
one byte at a time (every --byte-interval seconds) that never ends. Meanwhile, every 200 ms,
it samples the agent's threads and memory (/proc/PID/status: Threads, VmRSS, VmHWM) and
times a fresh `GET /livez` (a new connection each time, as a kubelet probe does).

Reports the most threads, the peak RSS, the worst /livez latency (and failed probes), when
the agent closed the last attacker connection and the longest any attacker connection
stayed open, then drops the remaining attacker connections and reports the threads after
they are gone (tiny_http's idle pool threads exit after 5 s).

Against an agent already running (e.g. `DEMO_PROFILE=release scripts/demo`):

    python3 bench/slowloris.py --url http://127.0.0.1:8000

Or let the script start an agent binary itself (on a free loopback port; the environment is
passed through, so HTTP_* settings apply), pointed at a Prometheus such as the demo's:

    python3 bench/slowloris.py --agent target/release/prometheus-agent \\
        --prometheus http://127.0.0.1:9090

Without --url or --agent it runs `scripts/demo` (release build) itself and stops it afterwards.
Python 3 standard library only.
"""
import argparse
import errno
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except Exception:
        return None, b""


def wait_until(what, seconds, check):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SystemExit(f"slowloris: {what} did not come up within {seconds} s")


def pid_listening_on(port):
    """The PID of the process with a listening socket on `port`, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def status(pid):
    """Threads, VmRSS and VmHWM (KiB) of `pid`."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Threads", "VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields["Threads"], fields["VmRSS"], fields["VmHWM"]


def probe(host, port, timeout=5.0):
    """Seconds for a fresh-connection GET /livez, or None if it failed."""
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"GET /livez HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data and data.endswith(b"ok\n"):
                    break
        if not data.startswith(b"HTTP/1.1 200"):
            return None
        return time.perf_counter() - start
    except OSError:
        return None


class Sampler(threading.Thread):
    def __init__(self, pid, host, port, period=0.2):
        super().__init__(daemon=True)
        self.pid, self.host, self.port, self.period = pid, host, port, period
        self.samples = []  # (t, threads, rss_kib, hwm_kib, livez seconds or None)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t = time.time()
            try:
                threads, rss, hwm = status(self.pid)
            except OSError:
                break
            latency = probe(self.host, self.port)
            self.samples.append((t, threads, rss, hwm, latency))
            self.stop.wait(max(0.0, self.period - (time.time() - t)))


def attack(host, port, n, byte_interval, duration, sampler_start):
    """Opens the connections and keeps them going; returns open/close times per connection."""
    sel = selectors.DefaultSelector()
    conns = []  # dict per connection
    head = f"GET /nodes HTTP/1.1\r\nHost: {host}\r\n".encode()
    filler = b"X-Slow: " + b"a" * 1_000_000  # never reaches the end of the line
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            raise SystemExit(f"slowloris: connect failed: {os.strerror(err)}")
        c = {"sock": s, "slow": i % 2 == 1, "opened": None, "closed": None,
             "sent": 0, "next": time.time() + (i % 10) * byte_interval / 10}
        conns.append(c)
        # Writable once established (a SYN dropped by a full accept queue is retried
        # after 1 s, 3 s, 7 s, ...).
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    print(f"opened {n} connections in {time.time() - sampler_start:.2f} s "
          f"({n // 2} idle, {n - n // 2} sending one header byte every {byte_interval:g} s)")
    payload = head + filler
    end = sampler_start + duration
    open_count = n
    while time.time() < end and open_count:
        for key, events in sel.select(timeout=0.05):
            c = key.data
            if c["opened"] is None and events & selectors.EVENT_WRITE:
                if c["sock"].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    c["opened"] = time.time()
                    sel.modify(c["sock"], selectors.EVENT_READ, c)
                    continue
                events |= selectors.EVENT_READ  # refused: the read below sees the error
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = c["sock"].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # closed by the agent (FIN or reset)
                c["closed"] = time.time()
                sel.unregister(c["sock"])
                c["sock"].close()
                open_count -= 1
        now = time.time()
        for c in conns:
            if c["slow"] and c["opened"] and c["closed"] is None and now >= c["next"]:
                c["next"] = now + byte_interval
                try:
                    c["sock"].send(payload[c["sent"]:c["sent"] + 1])
                    c["sent"] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    c["closed"] = now
                    sel.unregister(c["sock"])
                    c["sock"].close()
                    open_count -= 1
    for c in conns:
        if c["closed"] is None:
            c["sock"].close()
    return conns


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an agent already running, e.g. http://127.0.0.1:8000")
    ap.add_argument("--pid", type=int, help="its PID (default: found from the port)")
    ap.add_argument("--agent", help="start this agent binary instead")
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090",
                    help="PROMETHEUS_URL for --agent")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--byte-interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=60.0,
                    help="seconds to keep attacking at most (default 60)")
    ap.add_argument("--after", type=float, default=10.0,
                    help="seconds to wait after the attack before counting threads")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.connections + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    child = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        if args.agent:
            env.update(PROMETHEUS_URL=args.prometheus, LISTEN_ADDR=f"127.0.0.1:{port}",
                       RUST_LOG=env.get("RUST_LOG", "warn"))
            cmd = [args.agent]
            print(f"starting {args.agent} on {url}")
        else:
            env.update(PORT=str(port), DEMO_PROFILE="release")
            cmd = [os.path.join(ROOT, "scripts", "demo")]
            print(f"starting scripts/demo (release build) with the agent on {url}")
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until("the agent", 600, lambda: get(url + "/livez")[0] == 200)
        host, port = url.split("//")[1].rsplit(":", 1)
        port = int(port)
        pid = args.pid or pid_listening_on(port)
        if pid is None:
            raise SystemExit(f"slowloris: no process listening on port {port} found; use --pid")
        run(args, host, port, pid)
    finally:
        if child:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=30)


def run(args, host, port, pid):
    threads0, rss0, _ = status(pid)
    print(f"agent PID {pid}: {threads0} threads, RSS {rss0 / 1024:.1f} MiB before the attack")
    sampler = Sampler(pid, host, port)
    start = time.time()
    sampler.start()
    conns = attack(host, port, args.connections, args.byte_interval, args.duration, start)
    attack_end = time.time()
    time.sleep(args.after)
    sampler.stop.set()
    sampler.join()
    threads_after, rss_after, hwm = status(pid)

    during = [s for s in sampler.samples if s[0] <= attack_end]
    latencies = [s[4] for s in during if s[4] is not None]
    failed = sum(1 for s in during if s[4] is None)
    established = [c for c in conns if c["opened"] is not None]
    closed = [c for c in established if c["closed"] is not None]
    still_open = len(established) - len(closed)
    print(f"samples every 200 ms during the attack: {len(during)}")
    print(f"max threads: {max(s[1] for s in during)}")
    print(f"peak RSS: {max(s[2] for s in during) / 1024:.1f} MiB (VmHWM {hwm / 1024:.1f} MiB)")
    if latencies:
        print(f"/livez: worst {max(latencies) * 1000:.1f} ms, "
              f"median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms, "
              f"{failed} of {len(during)} probes failed")
    else:
        print(f"/livez: all {failed} probes failed")
    last_open = max((c["opened"] for c in established), default=start) - start
    print(f"attacker connections established: {len(established)} of {len(conns)} "
          f"(the last {last_open:.1f} s into the attack)")
    if closed:
        last = max(c["closed"] for c in closed) - start
        longest = max(c["closed"] - c["opened"] for c in closed)
        print(f"closed by the agent: {len(closed)} of {len(established)}; the last "
              f"{last:.1f} s into the attack; longest open {longest:.1f} s")
    else:
        print(f"closed by the agent: none of {len(established)}")
    if still_open:
        print(f"still open when the attack stopped ({args.duration:g} s): {still_open}")
    print(f"threads: {threads0} before, {threads_after} {args.after:g} s after the attack "
          f"(RSS {rss_after / 1024:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
