#!/usr/bin/env python3
"""Load benchmark of `irctl serve`: accepted deliveries per second and the
acknowledgement latency, with durable acks (each 202 is sent only after its
delivery is committed with synchronous=FULL).

Starts the irctl binary given (default target/release/irctl, else
target/debug/irctl) on 127.0.0.1 with a bearer token, then opens N
keep-alive connections (default 200) that each post M distinct Alertmanager
deliveries back to back. Only the Python standard library (asyncio
streams), so it runs anywhere CI does. Bounded: every request has a
timeout and the whole run stops after --max-seconds.

    python3 benches/serve.py [--irctl PATH] [--senders 200] [--per-sender 100]
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-token-0123456789"

PLAYBOOK = """version: 1
name: bench
title: Bench
auto: true
match:
  labels: ['alertname="NeverSentByTheBenchmark"']
steps:
  - id: a
    shell: "true"
"""


def body(i: int) -> bytes:
    name = f"Bench{i}"
    return json.dumps({
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "irctl",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "warning"},
        "commonAnnotations": {"summary": "benchmark"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "severity": "warning", "instance": "db-1:9100"},
            "annotations": {"summary": "benchmark"},
            "startsAt": "2024-01-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{i:016x}",
        }],
    }).encode()


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    if length:
        await reader.readexactly(length)
    return status


async def sender(port, indexes, latencies, statuses, deadline):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in indexes:
            if time.monotonic() > deadline:
                break
            b = body(i)
            req = (
                f"POST /hooks/alertmanager HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(b)}\r\n\r\n"
            ).encode() + b
            t = time.perf_counter()
            writer.write(req)
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout=30)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))
    return values[k]


async def load(port, senders, per_sender, max_seconds):
    latencies, statuses = [], {}
    deadline = time.monotonic() + max_seconds
    start = time.perf_counter()
    await asyncio.gather(*[
        sender(port, range(s * per_sender, (s + 1) * per_sender), latencies, statuses, deadline)
        for s in range(senders)
    ])
    return time.perf_counter() - start, latencies, statuses


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    default = os.path.join(root, "target", "release", "irctl")
    if not os.path.exists(default):
        default = os.path.join(root, "target", "debug", "irctl")
    ap = argparse.ArgumentParser()
    ap.add_argument("--irctl", default=default)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--per-sender", type=int, default=100)
    ap.add_argument("--max-seconds", type=float, default=120)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="irctl-serve-bench")
    os.makedirs(os.path.join(work, "playbooks"))
    with open(os.path.join(work, "playbooks", "bench.yaml"), "w") as f:
        f.write(PLAYBOOK)
    env = dict(os.environ, IRCTL_SECRET_SERVE_BEARER_TOKEN=TOKEN, NO_COLOR="1")
    proc = subprocess.Popen(
        [args.irctl, "serve", "--listen", "127.0.0.1:0", "--state-dir", "state",
         "--playbooks", "playbooks", "--max-runs", "1", "--queue-max", "1000000"],
        cwd=work, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = None
        started = time.monotonic()
        while port is None and time.monotonic() - started < 60:
            line = proc.stderr.readline()
            if not line:
                break
            if "listening on http://" in line:
                port = int(line.split("listening on http://")[1].split()[0].rsplit(":", 1)[1])
        if port is None:
            sys.exit("irctl serve did not start")
        # Keep reading serve's log so a full pipe never blocks it.
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        elapsed, latencies, statuses = asyncio.run(
            load(port, args.senders, args.per_sender, args.max_seconds))
        accepted = statuses.get(202, 0)
        print(f"senders: {args.senders}, requests: {len(latencies)}, statuses: {statuses}")
        print(f"accepted deliveries/s: {accepted / elapsed:.0f} ({accepted} in {elapsed:.2f}s)")
        print("ack latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}".format(
            *(1000 * percentile(latencies, p) for p in (50, 90, 99, 100))))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
