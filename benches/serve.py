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

That burst is a closed loop: each sender posts its next delivery as soon as
the previous one is answered, so it finds the most deliveries/s serve can
take, and by Little's law its latency is senders / throughput (200 senders
at 4,000/s wait 50 ms each on average whatever serve does). The issue's
target, p99 acknowledgement at 2,000 deliveries/s from 200 concurrent
senders, is measured open loop: --open-rate 2000 keeps 200 keep-alive
connections posting on a fixed schedule for --seconds, and each latency
counts from when the delivery was due, so a sender held up by a slow
answer is charged for it (no coordinated omission).

    python3 benches/serve.py --open-rate 2000 [--seconds 20]

Both report the receiver's own CPU time per delivery, which stays
meaningful on a busy machine where the latencies do not (and, apart, the
CPU of the `irctl run` children serve reaped meanwhile).

Soak (memory must stay flat): a steady --rate deliveries/s (default 100)
for --soak SECONDS (600 for the 10-minute soak) on 20 keep-alive
connections, serve's RSS sampled every 10 s; reports first/last/max RSS.

    python3 benches/serve.py --soak 600 [--rate 100]

Comparison on the same load: --receiver python starts a minimal Python
receiver instead (stdlib ThreadingHTTPServer, bearer check, each delivery
inserted into SQLite with journal_mode=WAL and synchronous=FULL and
committed before the 202, one connection per thread): the durable baseline
irctl is compared with.

    python3 benches/serve.py --receiver python
    python3 benches/serve.py --receiver python --soak 600
"""

import argparse
import asyncio
import hashlib
import http.server
import json
import os
import shutil
import signal
import sqlite3
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


def request(i: int) -> bytes:
    """The HTTP request posting delivery `i` to serve's Alertmanager hook."""
    b = body(i)
    return (
        f"POST /hooks/alertmanager HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(b)}\r\n\r\n"
    ).encode() + b


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
            req = request(i)
            t = time.perf_counter()
            writer.write(req)
            await writer.drain()
            try:
                status = await asyncio.wait_for(read_response(reader), timeout=30)
            except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                statuses["error"] = statuses.get("error", 0) + 1
                break
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


async def soak(port, rate, seconds, pid, connections=20, from_due=False):
    """Posts `rate` deliveries/s for `seconds` on `connections` keep-alive
    connections (open loop: each connection keeps its own schedule), and
    samples the RSS of `pid` every 10 s. With `from_due`, a latency counts
    from when its delivery was due rather than when it was written."""
    latencies, statuses, rss = [], {}, []
    start = time.monotonic()
    end = start + seconds
    interval = connections / rate

    async def one(c):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i, due = c, start + (c / rate)
        try:
            while due < end:
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                req = request(1_000_000 + i)
                t = time.perf_counter()
                if from_due:
                    t -= max(0.0, time.monotonic() - due)
                writer.write(req)
                await writer.drain()
                status = await asyncio.wait_for(read_response(reader), timeout=30)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
                i += connections
                due += interval
        finally:
            writer.close()

    async def sample():
        while True:
            rss.append((time.monotonic() - start, rss_kib(pid)))
            if time.monotonic() >= end:
                return
            await asyncio.sleep(min(10, max(0, end - time.monotonic())))

    await asyncio.gather(sample(), *[one(c) for c in range(connections)])
    return time.monotonic() - start, latencies, statuses, rss


def rust_client(root):
    """Builds benches/serve_load.rs (release) and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "serve_load", "--no-run", "--message-format=json"],
        cwd=root, stdout=subprocess.PIPE, check=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["target"]["name"] == "serve_load":
            return msg["executable"]
    sys.exit("cargo built no serve_load executable")


def run_client(client, port, args):
    """Runs the Rust load generator; returns (elapsed, p50/p90/p99/max ms, statuses, n)."""
    cmd = [client, "--port", str(port), "--token", TOKEN, "--senders", str(args.senders),
           "--max-seconds", str(args.max_seconds)]
    if args.open_rate:
        cmd += ["--open-rate", str(args.open_rate), "--seconds", str(args.seconds)]
    else:
        cmd += ["--per-sender", str(args.per_sender)]
    r = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True,
                                  timeout=args.max_seconds + 60).stdout)
    statuses = {int(k) if k.isdigit() else k: v for k, v in r["statuses"].items()}
    return r["elapsed"], [r["p50"], r["p90"], r["p99"], r["max"]], statuses, r["requests"]


def cpu_seconds(pid):
    """CPU time of `pid` and of the children it has reaped, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def python_receiver(work):
    """The comparison: a minimal durable receiver in Python."""
    db_path = os.path.join(work, "queue.db")
    init = sqlite3.connect(db_path)
    init.execute("PRAGMA journal_mode=WAL")
    init.execute("CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, body BLOB, received REAL)")
    init.commit()
    init.close()
    local = threading.local()

    def db():
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(db_path, timeout=30)
            local.db.execute("PRAGMA synchronous=FULL")
        return local.db

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code):
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(length)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.answer(401)
            try:
                json.loads(data)
            except ValueError:
                return self.answer(400)
            conn = db()
            conn.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?)",
                         (hashlib.sha256(data).hexdigest(), data, time.time()))
            conn.commit()
            self.answer(202)

    # The stdlib's listen backlog of 5 would make 200 senders time out in
    # SYN retries; give it the same backlog a tuned server has.
    http.server.ThreadingHTTPServer.request_queue_size = 1024
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


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
    ap.add_argument("--soak", type=float, metavar="SECONDS",
                    help="steady load for SECONDS instead of the burst, RSS sampled every 10 s")
    ap.add_argument("--rate", type=float, default=100, help="deliveries/s during --soak")
    ap.add_argument("--open-rate", type=float, metavar="PER_SECOND",
                    help="open loop: this many deliveries/s from --senders connections")
    ap.add_argument("--seconds", type=float, default=20, help="how long --open-rate runs")
    ap.add_argument("--receiver", choices=["irctl", "python"], default="irctl")
    ap.add_argument("--client", choices=["rust", "python"], default="rust",
                    help="load generator: benches/serve_load.rs (default) or Python asyncio")
    ap.add_argument("--be-python-receiver", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.be_python_receiver:
        python_receiver(args.be_python_receiver)
        return
    # serve runs in a temp dir: a relative --irctl must not depend on it.
    args.irctl = os.path.abspath(args.irctl)

    client = rust_client(root) if args.client == "rust" and not args.soak else None
    work = tempfile.mkdtemp(prefix="irctl-serve-bench")
    os.makedirs(os.path.join(work, "playbooks"))
    with open(os.path.join(work, "playbooks", "bench.yaml"), "w") as f:
        f.write(PLAYBOOK)
    env = dict(os.environ, IRCTL_SECRET_SERVE_BEARER_TOKEN=TOKEN, NO_COLOR="1")
    if args.receiver == "python":
        command = [sys.executable, os.path.abspath(__file__), "--be-python-receiver", work]
    else:
        command = [args.irctl, "serve", "--listen", "127.0.0.1:0", "--state-dir", "state",
                   "--playbooks", "playbooks", "--max-runs", "1", "--queue-max", "1000000"]
    proc = subprocess.Popen(command, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
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
        print(f"receiver: {args.receiver} ({' '.join(command[:2])})")
        cpu_before = cpu_seconds(proc.pid)

        def cpu_per_delivery(n):
            own, children = (a - b for a, b in zip(cpu_seconds(proc.pid), cpu_before))
            if n:
                print(f"receiver CPU per delivery: {1000 * own / n:.3f} ms "
                      f"(and {children:.1f} s in the runs it started and reaped meanwhile)")

        print(f"client: {args.client}")
        if args.soak:
            elapsed, latencies, statuses, rss = asyncio.run(
                soak(port, args.rate, args.soak, proc.pid))
            print(f"soak: {len(latencies)} deliveries in {elapsed:.0f}s "
                  f"({len(latencies) / elapsed:.1f}/s), statuses: {statuses}")
            print("ack latency ms: p50 {:.1f}  p99 {:.1f}  max {:.1f}".format(
                *(1000 * percentile(latencies, p) for p in (50, 99, 100))))
            print("RSS MiB every 10 s: " + " ".join(f"{kib / 1024:.1f}" for _, kib in rss))
            kibs = [kib for _, kib in rss]
            print(f"RSS MiB: first {kibs[0] / 1024:.1f}  last {kibs[-1] / 1024:.1f}  "
                  f"max {max(kibs) / 1024:.1f}")
            return
        if client:
            elapsed, ms, statuses, n = run_client(client, port, args)
        else:
            if args.open_rate:
                elapsed, latencies, statuses, _ = asyncio.run(soak(
                    port, args.open_rate, args.seconds, proc.pid, connections=args.senders,
                    from_due=True))
            else:
                elapsed, latencies, statuses = asyncio.run(
                    load(port, args.senders, args.per_sender, args.max_seconds))
            ms = [1000 * percentile(latencies, p) for p in (50, 90, 99, 100)]
            n = len(latencies)
        accepted = statuses.get(202, 0)
        if args.open_rate:
            print(f"open loop: {args.senders} senders offering {args.open_rate:.0f}/s "
                  f"for {args.seconds:.0f}s; statuses: {statuses}")
        else:
            print(f"senders: {args.senders}, requests: {n}, statuses: {statuses}")
        print(f"accepted deliveries/s: {accepted / elapsed:.0f} ({accepted} in {elapsed:.2f}s)")
        since = " (from when due)" if args.open_rate else ""
        print(f"ack latency ms{since}: p50 {ms[0]:.1f}  p90 {ms[1]:.1f}  "
              f"p99 {ms[2]:.1f}  max {ms[3]:.1f}")
        cpu_per_delivery(n)
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
