#!/usr/bin/env python3
"""irctl's engine overhead next to bash, in paired runs, against the targets.

Usage: cargo build --release && python3 benches/vs_bash.py [--runs N] [--check]

The figure users feel during an outage is what irctl adds to every step, so
each case runs irctl and its bash equivalent back to back, N times, with the
order alternating so neither side always gets the warmer cache, and reports
the medians and the median of the per-pair ratios:

  chain   a 200-step chain of `true` (`irctl run`) vs a bash loop of 200
          `sh -c true`; target: ratio <= 1.15
  sleep   10 x `sleep 1` in parallel (`--concurrency 10`) vs bash `& wait`;
          target: irctl <= 1.05 s
  memory  peak RSS of `irctl run` over a 1,000-step DAG (10 wide chains);
          target: < 50 MB

Every irctl run gets a fresh state directory, made before the clock starts.
Run it on a quiet machine: other load widens the spread (min/max are shown)
and favours whichever side context-switches less.
`--check` exits 1 when a target is missed; without it the script only reports.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRCTL = os.path.join(ROOT, "target", "release", "irctl")

CHAIN_STEPS = 200
CHAIN_RATIO_TARGET = 1.15
SLEEP_TARGET_S = 1.05
RSS_TARGET_MB = 50.0


def timed(cmd, env=None):
    """Runs `cmd`; returns (wall seconds, peak RSS of the process in KiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    # wait4 gives this child's own peak RSS (KiB on Linux), not the session's.
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{cmd} failed ({code}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss


def write_playbook(dir, name, steps):
    os.makedirs(dir, exist_ok=True)
    with open(os.path.join(dir, f"{name}.yaml"), "w") as f:
        f.write(f"version: 1\nname: {name}\ntitle: {name}\nmatch:\n  labels: ['bench=\"{name}\"']\n"
                f"drill:\n  incident: {{ title: d, labels: {{ bench: {name} }} }}\nsteps:\n")
        f.writelines(steps)


class Irctl:
    """`irctl run NAME` over one generated playbook, in a fresh state dir each time."""

    def __init__(self, tmp, name, steps, *flags):
        self.tmp = tmp
        self.dir = os.path.join(tmp, name)
        self.cmd = [IRCTL, "run", name, "--playbooks", self.dir, "--label", f"bench={name}", *flags]
        self.runs = 0
        write_playbook(self.dir, name, steps)

    def __call__(self):
        self.runs += 1
        state = os.path.join(self.tmp, f"state-{os.path.basename(self.dir)}-{self.runs}")
        os.makedirs(state)
        env = dict(os.environ, IRCTL_STATE_DIR=state)
        try:
            return timed(self.cmd, env)
        finally:
            shutil.rmtree(state, ignore_errors=True)


def paired(runs, irctl, bash):
    """Runs both sides `runs` times, alternating which goes first."""
    a, b = [], []
    for i in range(runs):
        if i % 2 == 0:
            a.append(irctl()[0])
            b.append(timed(bash)[0])
        else:
            b.append(timed(bash)[0])
            a.append(irctl()[0])
    ratios = [x / y for x, y in zip(a, b)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios), min(ratios), max(ratios)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=11, help="pairs per case (default 11)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    if not os.path.exists(IRCTL):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="irctl-bench-")
    missed = []
    try:
        chain = Irctl(tmp, "chain", [
            f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i - 1}]\n" if i else "")
            for i in range(CHAIN_STEPS)
        ])
        bash = ["bash", "-c", f"for i in $(seq {CHAIN_STEPS}); do sh -c true; done"]
        chain()  # warm the page cache; not counted
        irctl_s, bash_s, ratio, lo, hi = paired(args.runs, chain, bash)
        ok = ratio <= CHAIN_RATIO_TARGET
        missed += [] if ok else ["chain"]
        print(f"chain of {CHAIN_STEPS} `true`:  irctl {irctl_s * 1000:7.1f} ms  bash {bash_s * 1000:7.1f} ms  "
              f"ratio median {ratio:.2f} (min {lo:.2f}, max {hi:.2f})  target <= {CHAIN_RATIO_TARGET}  "
              f"{'ok' if ok else 'MISSED'}")
        per_step = (irctl_s - bash_s) / CHAIN_STEPS * 1e6
        print(f"  irctl minus bash, per step: {per_step:+.0f} us")

        sleepy = Irctl(tmp, "sleepy", [f"  - id: s{i}\n    shell: sleep 1\n" for i in range(10)],
                       "--concurrency", "10")
        bash = ["bash", "-c", "for i in $(seq 10); do sleep 1 & done; wait"]
        n = max(3, args.runs // 2)
        irctl_s, bash_s, ratio, _, _ = paired(n, sleepy, bash)
        ok = irctl_s <= SLEEP_TARGET_S
        missed += [] if ok else ["sleep"]
        print(f"10 x `sleep 1`, parallel:  irctl {irctl_s:.3f} s  bash {bash_s:.3f} s  ratio {ratio:.3f}  "
              f"target irctl <= {SLEEP_TARGET_S} s  {'ok' if ok else 'MISSED'}")

        big = Irctl(tmp, "big", [
            f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i - 10}]\n" if i >= 10 else "")
            for i in range(1000)
        ], "--concurrency", "8")
        samples = [big() for _ in range(max(1, args.runs // 4))]
        rss_mb = max(rss for _, rss in samples) / 1024
        wall = statistics.median(w for w, _ in samples)
        ok = rss_mb < RSS_TARGET_MB
        missed += [] if ok else ["memory"]
        print(f"1,000-step DAG, -c 8:  peak RSS {rss_mb:.1f} MB  wall {wall:.2f} s  "
              f"target < {RSS_TARGET_MB:.0f} MB  {'ok' if ok else 'MISSED'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.check and missed:
        sys.exit(f"targets missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
