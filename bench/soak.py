#!/usr/bin/env python3
"""Soak benchmark: RSS, threads and open file descriptors of the agent over a long busy run.

    SOAK_SECONDS=600 python3 bench/soak.py          # the 10-minute soak (default)
    SOAK_SECONDS=150 python3 bench/soak.py          # a short one

Starts the synthetic exporter (3-node cluster), a real Prometheus scraping it every second
and the agent (release build) at UPDATE_INTERVAL=200ms, on free loopback ports, and stops
them at the end. Meanwhile:

  - 32 stream clients (raw sockets; half WebSocket, half chunked HTTP, on /metrics and
    /metrics/pods) each stay connected a random 1-6 s, leave (with a close frame or by
    dropping the connection), and reconnect at once;
  - /nodes and /pods are downloaded every second.

Every 10 s the agent's RSS, thread count and open file descriptors (/proc/<pid>/fd) are
sampled; the series is printed with first/last/max, so flatness (or growth) is visible.
"""
import argparse
import base64
import collections
import os
import random
import socket
import threading
import time

import benchlib as b


class StreamClient(threading.Thread):
    def __init__(self, index, host, port, stop):
        super().__init__(daemon=True)
        self.index, self.host, self.port, self.stop = index, host, port, stop
        self.websocket = index % 2 == 0
        self.random = random.Random(index)
        self.connections = self.errors = self.bytes = 0
        self.refused = collections.Counter()  # by HTTP status

    def handshake(self, sock, path):
        if self.websocket:
            key = base64.b64encode(os.urandom(16)).decode()
            request = (f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n")
        else:
            request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n"
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return None
            head += data
        status = head.split(b"\r\n", 1)[0]
        return status.split(b" ")[1] if b" " in status else b"?"

    def session(self):
        path = "/metrics/pods" if self.random.random() < 0.5 else "/metrics"
        stay = self.random.uniform(1.0, 6.0)
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            status = self.handshake(sock, path)
            if status not in (b"101", b"200"):
                self.refused[status.decode(errors="replace") if status else "none"] += 1
                time.sleep(0.5)
                return
            self.connections += 1
            sock.settimeout(0.5)
            end = time.monotonic() + stay
            while time.monotonic() < end and not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                self.bytes += len(data)
            if self.websocket and self.random.random() < 0.5:
                sock.sendall(b"\x88\x80" + os.urandom(4))  # masked close frame, no payload
            # Otherwise the connection is simply dropped.

    def run(self):
        while not self.stop.is_set():
            try:
                self.session()
            except OSError:
                self.errors += 1
                time.sleep(0.5)


class Downloader(threading.Thread):
    def __init__(self, url, stop):
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.ok = self.failed = 0
        self.slowest = 0.0

    def run(self):
        while not self.stop.is_set():
            began = time.monotonic()
            for path in ("/nodes", "/pods"):
                status, _, seconds = b.http_get(self.url + path, timeout=10)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                self.slowest = max(self.slowest, seconds)
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sample-every", type=float, default=10.0)
    ap.add_argument("--update-interval", default="200ms")
    args = ap.parse_args()

    paths = b.build(["synthetic_exporter"])
    exporter, exporter_url = b.start_exporter(paths["synthetic_exporter"])
    prometheus, prometheus_url = b.start_prometheus([exporter_url], "1s")
    b.wait_until("Prometheus rates", 60, lambda: b.prometheus_has_series(
        prometheus_url, "rate(container_cpu_usage_seconds_total[10s])"), prometheus)
    agent, url = b.start_agent(paths["agent"], prometheus_url,
                               {"UPDATE_INTERVAL": args.update_interval, "WINDOW": "10s",
                                "RUST_LOG": "warn"})
    b.wait_until("agent rows", 60, lambda: (b.csv_rows(url, "/pods") or 0) > 0, agent)

    host, port = url.split("//")[1].split(":")
    stop = threading.Event()
    clients = [StreamClient(i, host, int(port), stop) for i in range(args.clients)]
    downloader = Downloader(url, stop)
    b.say(f"soak: {args.seconds:.0f} s, {args.clients} stream clients reconnecting every 1-6 s, "
          f"/nodes and /pods downloaded every second; sampling every {args.sample_every:.0f} s")
    samples = []  # (seconds, rss, threads, fds)
    started = time.monotonic()

    def sample():
        figures = b.status(agent.pid)
        samples.append((time.monotonic() - started, figures["VmRSS"], figures["Threads"],
                        b.open_fds(agent.pid)))
        t, rss, threads, fds = samples[-1]
        b.say(f"  t={t:5.0f} s  RSS {b.mib(rss):>10}  threads {threads:4d}  fds {fds:4d}")

    sample()  # before the load
    for client in clients:
        client.start()
    downloader.start()
    c0 = b.agent_metrics(url).get("prometheus_agent_cycles_total", 0)
    next_sample = started + args.sample_every
    while time.monotonic() < started + args.seconds:
        if agent.poll() is not None:
            b.die(f"the agent exited ({agent.returncode}):\n{b.log_tail(agent)}")
        time.sleep(max(0.0, min(next_sample, started + args.seconds) - time.monotonic()))
        if time.monotonic() >= next_sample:
            sample()
            next_sample += args.sample_every
    figures = b.agent_metrics(url)
    stop.set()
    for thread in clients + [downloader]:
        thread.join(10)
    time.sleep(2.0)
    sample()  # after the clients left
    hwm = b.status(agent.pid)["VmHWM"]

    b.say()
    b.say(f"soak of {args.seconds:.0f} s at UPDATE_INTERVAL={args.update_interval}: "
          f"{figures.get('prometheus_agent_cycles_total', 0) - c0:.0f} cycles, "
          f"{figures.get('prometheus_agent_ticks_missed_total', 0):.0f} ticks missed")
    refused = sum((c.refused for c in clients), collections.Counter())
    b.say(f"stream sessions: {sum(c.connections for c in clients)} accepted, "
          f"{sum(refused.values())} refused {dict(refused)}, {sum(c.errors for c in clients)} "
          f"connection errors, {sum(c.bytes for c in clients) / 1e6:.1f} MB received")
    b.say(f"downloads: {downloader.ok} ok, {downloader.failed} failed, "
          f"slowest {downloader.slowest * 1000:.0f} ms")
    for name, at, show in (("RSS", 1, b.mib), ("threads", 2, str), ("open fds", 3, str)):
        values = [s[at] for s in samples]
        under_load = values[1:-1] or values
        b.say(f"{name:9}: before load {show(values[0])}, first under load {show(under_load[0])}, "
              f"last under load {show(under_load[-1])}, max {show(max(values))}, "
              f"after the clients left {show(values[-1])}")
    b.say(f"peak RSS (VmHWM): {b.mib(hwm)}")
    b.say(f"warnings logged by the agent: "
          f"{sum(1 for line in b.log_tail(agent, 100000).splitlines() if ' WARN ' in line)}")


if __name__ == "__main__":
    main()
