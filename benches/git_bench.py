#!/usr/bin/env python3
"""irctl Git-source benchmarks: a repository of 1,000 playbooks and 2,000 commits.

Usage: cargo build --release && python3 benches/git_bench.py [--runs N]

Builds the repository with `git fast-import`, serves it with `git daemon` on
127.0.0.1, and times (median wall, peak RSS) what a responder pays:
  - `irctl list --repo … --offline` with a warm cache (target: < 300 ms),
  - `irctl list --repo …` when the fetch finds nothing new (one round trip),
  - the first clone into an empty cache,
  - `irctl history` of one playbook across the 2,000 commits,
next to `irctl list` over the same files in a plain directory.
Like bench.py, nothing here asserts: the figures are for reports.
"""
import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(HERE, "bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PLAYBOOKS = 1000
COMMITS = 2000


def git_env(home):
    return dict(os.environ, HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
                XDG_CACHE_HOME=os.path.join(home, ".cache"))


def build_repo(path, env):
    """One commit adding every playbook, then commits that each edit one."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True, env=env)
    lines = []
    def data(text):
        raw = text.encode()
        lines.append(b"data %d\n" % len(raw) + raw + b"\n")
    stamp = 1_700_000_000
    for c in range(COMMITS):
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"committer Bench <bench@example.com> %d +0000\n" % (stamp + c * 60))
        data(f"commit {c}")
        if c == 0:
            for i in range(PLAYBOOKS):
                body = bench.playbook(i)
                lines.append(b"M 100644 inline playbooks/p%04d.yaml\n" % i)
                data(body)
        else:
            i = c % PLAYBOOKS
            body = bench.playbook(i).replace("title: Generated", f"title: Revision {c} of generated", 1)
            lines.append(b"M 100644 inline playbooks/p%04d.yaml\n" % i)
            data(body)
        lines.append(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(lines), cwd=path, check=True, env=env)
    subprocess.run(["git", "gc", "-q"], cwd=path, check=True, env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    irctl = bench.IRCTL
    if not os.path.exists(irctl):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="irctl-git-bench-")
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    env = git_env(home)
    srv = os.path.join(tmp, "srv")
    os.makedirs(srv)
    t0 = time.perf_counter()
    build_repo(os.path.join(srv, "playbooks.git"), env)
    print(f"built {PLAYBOOKS} playbooks x {COMMITS} commits in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
                               f"--port={port}", f"--base-path={srv}", srv],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("git daemon did not start")
                time.sleep(0.05)
        url = f"git://127.0.0.1:{port}/playbooks.git"
        cache = os.path.join(tmp, "cache")
        base = [irctl, "list", "--repo", url, "--cache-dir", cache]
        results = []
        results.append(("first clone into an empty cache + list", *bench.measure(base, 1, env=env)))
        results.append(("list --offline, warm cache (target < 300 ms)", *bench.measure(base + ["--offline"], args.runs, env=env)))
        results.append(("list, fetch with nothing new", *bench.measure(base, args.runs, env=env)))
        results.append(("history p0001 over 2,000 commits",
                        *bench.measure([irctl, "history", "generated-0001", "--repo", url, "--cache-dir", cache, "--offline"], args.runs, env=env)))
        work = os.path.join(tmp, "work")
        subprocess.run(["git", "clone", "-q", os.path.join(srv, "playbooks.git"), work], check=True, env=env)
        results.append(("list from a plain directory (same files)",
                        *bench.measure([irctl, "list", "--playbooks", os.path.join(work, "playbooks")], args.runs, env=env)))
    finally:
        daemon.kill()
        daemon.wait()
    bench.report(results)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
