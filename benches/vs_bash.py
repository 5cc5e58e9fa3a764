#!/usr/bin/env python3
"""irctl's per-step overhead against bash, with the targets it is held to.

Usage: cargo build --release && python3 benches/vs_bash.py [--runs N] [--callgrind]

  * a 200-step chain of `true` against a bash loop that starts each step the
    way irctl does, `bash -e -o pipefail -c true` (like for like: the
    figure is irctl's own overhead, not the difference between two
    shells), run in pairs (irctl, then bash, then the next pair) so that
    load from other processes hits both sides alike; the figure is the
    median of the per-pair ratios. Target: <= 1.15x. For reference it also
    prints the ratio against a loop of `sh -c true` (dash on Debian, which
    starts faster than bash: a lower bound no bash-run step can reach).
  * 10 x `sleep 1` in parallel (`--concurrency 10`), median wall.
    Target: <= 1.05 s.
  * a 1,000-step DAG (10 wide layers, `--concurrency 8`), peak RSS of the
    irctl process. Target: < 50 MB.

Wall-clock figures move with the machine's load. `--callgrind` also counts
the instructions irctl's own process executes on the 200-step chain (its
children, `sh`, are not counted), which does not: use it to compare changes.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRCTL = os.environ.get("IRCTL_BIN", os.path.join(ROOT, "target", "release", "irctl"))

TARGET_RATIO = 1.15
TARGET_SLEEP = 1.05
TARGET_RSS_MB = 50


def timed(cmd, env=None):
    """(wall seconds, peak RSS KiB) of one run of `cmd`, which must succeed."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    # wait4 gives this child's own peak RSS, not the whole session's.
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss


def write_playbook(tmp, name, steps):
    """Writes a playbook of `steps` (YAML fragments) alone in a directory; its directory."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    with open(os.path.join(d, f"{name}.yaml"), "w") as f:
        f.write(f"version: 1\nname: {name}\ntitle: {name}\nmatch:\n  labels: ['bench=\"{name}\"']\nsteps:\n")
        f.writelines(steps)
    return d


def run_cmd(name, directory, *extra):
    return [IRCTL, "run", name, "--playbooks", directory, "--label", f"bench={name}", *extra]


def callgrind_instructions(cmd, env):
    """Instructions executed by `cmd`'s own process (all its threads) under callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
    ).stderr.decode()
    m = re.search(r"refs:\s+([\d,]+)", out)
    if not m:
        sys.exit(f"no instruction count in callgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15, help="pairs for the chain (default 15)")
    ap.add_argument("--callgrind", action="store_true", help="also count irctl's instructions")
    args = ap.parse_args()
    if not os.path.exists(IRCTL):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="irctl-vs-bash-")
    # A private state and cache directory: nothing of the user's is read or grown.
    env = dict(os.environ, IRCTL_STATE_DIR=os.path.join(tmp, "state"),
               IRCTL_CACHE_DIR=os.path.join(tmp, "cache"))
    ok = True

    chain = write_playbook(tmp, "chain", [
        f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i - 1}]\n" if i else "")
        for i in range(200)])
    bash = ["bash", "-c", "for i in $(seq 200); do bash -e -o pipefail -c true; done"]
    dash = ["bash", "-c", "for i in $(seq 200); do sh -c true; done"]
    timed(run_cmd("chain", chain), env)  # warms the summary cache and the page cache
    pairs = []
    for _ in range(args.runs):
        irctl_wall, _ = timed(run_cmd("chain", chain), env)
        bash_wall, _ = timed(bash)
        sh_wall, _ = timed(dash)
        pairs.append((irctl_wall, bash_wall, sh_wall))
    ratio = statistics.median(p[0] / p[1] for p in pairs)
    sh_ratio = statistics.median(p[0] / p[2] for p in pairs)
    ok &= ratio <= TARGET_RATIO
    print(f"200-step chain of `true`: irctl {statistics.median(p[0] for p in pairs) * 1000:.0f} ms, "
          f"bash loop {statistics.median(p[1] for p in pairs) * 1000:.0f} ms (medians of {args.runs}); "
          f"median ratio {ratio:.3f}x (target <= {TARGET_RATIO}x); "
          f"against `sh -c true` {statistics.median(p[2] for p in pairs) * 1000:.0f} ms, {sh_ratio:.3f}x")

    sleepy = write_playbook(tmp, "sleepy", [f"  - id: s{i}\n    shell: sleep 1\n" for i in range(10)])
    sleeps = [timed(run_cmd("sleepy", sleepy, "--concurrency", "10"), env)[0]
              for _ in range(max(1, args.runs // 5))]
    sleep_wall = statistics.median(sleeps)
    ok &= sleep_wall <= TARGET_SLEEP
    print(f"10 x `sleep 1` in parallel: {sleep_wall:.3f} s (median of {len(sleeps)}; target <= {TARGET_SLEEP} s)")

    big = write_playbook(tmp, "big", [
        f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i - 10}]\n" if i >= 10 else "")
        for i in range(1000)])
    big_wall, big_rss = timed(run_cmd("big", big, "--concurrency", "8"), env)
    ok &= big_rss / 1024 < TARGET_RSS_MB
    print(f"1,000-step DAG, -c 8: {big_wall:.2f} s, peak RSS {big_rss / 1024:.1f} MB (target < {TARGET_RSS_MB} MB)")

    if args.callgrind:
        if not shutil.which("valgrind"):
            sys.exit("--callgrind needs valgrind")
        n = callgrind_instructions(run_cmd("chain", chain), env)
        print(f"200-step chain, irctl's own instructions (callgrind): {n:,} ({n / 200:,.0f} per step)")

    shutil.rmtree(tmp, ignore_errors=True)
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
