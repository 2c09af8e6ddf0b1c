#!/usr/bin/env python3
"""Stream benchmark: memory per open stream and row delivery delay at N WebSocket clients.

Run the demo in one terminal (`DEMO_PROFILE=release UPDATE_INTERVAL=1s scripts/demo`), then:

    python3 bench/streams.py --url http://127.0.0.1:8000 --clients 32 --cycles 30

Each client is a raw WebSocket connection on its own thread that timestamps every row
message on arrival. The delay of a row is its arrival time minus the end of its cycle, where
the end of a cycle is its `collection_time` (when the cycle issued its queries) plus the
cycle's duration as reported by /agent/metrics right after the cycle. Memory per stream is
the agent's RSS growth from 0 to N open streams, divided by N.
"""
import argparse
import base64
import os
import socket
import statistics
import threading
import time
import urllib.request
from datetime import datetime


def figure(url, name):
    text = urllib.request.urlopen(url + "/agent/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise SystemExit(f"{name} missing from /agent/metrics")


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=__import__("datetime").timezone.utc).timestamp()


class Client(threading.Thread):
    def __init__(self, host, port, path):
        super().__init__(daemon=True)
        self.sock = socket.create_connection((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        if b" 101 " not in status:
            raise SystemExit(f"handshake refused: {status!r}")
        while self.file.readline() not in (b"\r\n", b""):
            pass
        self.arrivals = []  # (collection_time, arrival)

    def frame(self):
        head = self.file.read(2)
        if len(head) < 2:
            return None, None
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(self.file.read(2), "big")
        elif n == 127:
            n = int.from_bytes(self.file.read(8), "big")
        return head[0] & 0x0F, self.file.read(n)

    def run(self):
        header = True
        while True:
            op, payload = self.frame()
            if op is None or op == 8:
                return
            if op != 1:
                continue
            now = time.time()
            if header:
                header = False
                continue
            self.arrivals.append((payload.split(b",")[1].decode(), now))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--path", default="/metrics/pods?size=0")
    args = ap.parse_args()
    host, port = args.url.split("//")[1].split(":")
    port = int(port)

    rss0 = figure(args.url, "prometheus_agent_resident_memory_bytes")
    clients = [Client(host, port, args.path) for _ in range(args.clients)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    rss_n = figure(args.url, "prometheus_agent_resident_memory_bytes")

    durations = {}  # cycles_total -> duration of that cycle
    start = figure(args.url, "prometheus_agent_cycles_total")
    while True:
        cycles = figure(args.url, "prometheus_agent_cycles_total")
        if cycles not in durations:
            durations[cycles] = figure(args.url, "prometheus_agent_last_cycle_duration_seconds")
        if cycles >= start + args.cycles:
            break
        time.sleep(0.02)
    time.sleep(0.5)
    rss_end = figure(args.url, "prometheus_agent_resident_memory_bytes")

    cycle_duration = statistics.median(durations.values())
    delays = []
    for c in clients:
        for collected, arrival in c.arrivals:
            delays.append(arrival - (parse_time(collected) + cycle_duration))
    delays.sort()
    if not delays:
        raise SystemExit("no rows arrived")
    counts = {len(c.arrivals) for c in clients}
    print(f"clients: {args.clients}, cycles: {args.cycles}, rows per client: {sorted(counts)}")
    print(f"agent RSS: {rss0/2**20:.2f} MiB with 0 streams, {rss_n/2**20:.2f} MiB with "
          f"{args.clients}, {rss_end/2**20:.2f} MiB after {args.cycles} cycles")
    print(f"memory per open stream: {(rss_n - rss0) / args.clients / 1024:.1f} KiB")
    print(f"cycle duration (median): {cycle_duration*1000:.1f} ms")
    print(f"delay from end of cycle to arrival over {len(delays)} rows: "
          f"median {statistics.median(delays)*1000:.2f} ms, "
          f"p99 {delays[int(len(delays)*0.99)-1]*1000:.2f} ms, worst {delays[-1]*1000:.2f} ms")


if __name__ == "__main__":
    main()
