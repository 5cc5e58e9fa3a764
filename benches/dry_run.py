#!/usr/bin/env python3
"""How `irctl run --dry-run` scales with the number of steps.

Usage: cargo build --release && python3 benches/dry_run.py [--runs N] [--sizes 500,1000,2000]

For each size, three generated playbooks: a chain (each step needs the one
before), the same chain declared last step first (so no step's level is
known when the file reaches it), and a wide one (every step needs the
first, and reads `steps.s0.stdout`).
It prints the median CPU time of `run --dry-run` and, for scale, of
`validate`, and the time per step: linear work keeps the per-step figure
flat as the size doubles; quadratic work doubles it. Nothing here is
executed (`--dry-run`), so the figures are irctl's own work.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRCTL = os.environ.get("IRCTL_BIN", os.path.join(ROOT, "target", "release", "irctl"))


def write_playbook(tmp, name, steps):
    """Writes a playbook of `steps` (YAML fragments) alone in a directory; its directory."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    with open(os.path.join(d, f"{name}.yaml"), "w") as f:
        f.write(f"version: 1\nname: {name}\ntitle: {name}\nmatch:\n  labels: ['bench=\"{name}\"']\nsteps:\n")
        f.writelines(steps)
    return d


def chain(n):
    return [f"  - id: s{i}\n    shell: \"echo {{{{ incident.labels.bench }}}}\"\n"
            + (f"    needs: [s{i - 1}]\n" if i else "")
            for i in range(n)]


def reversed_chain(n):
    return list(reversed(chain(n)))


def wide(n):
    return ["  - id: s0\n    shell: \"true\"\n"] + [
        f"  - id: s{i}\n    needs: [s0]\n    shell: \"echo {{{{ steps.s0.stdout }}}}\"\n"
        for i in range(1, n)]


def median_cpu(cmd, env, runs):
    """Median CPU seconds (user + system) of `cmd`, which must succeed: on a
    shared machine CPU time moves much less with other load than wall time."""
    cpus = []
    for _ in range(runs):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"{' '.join(cmd)} failed ({code}): {err.decode()[-2000:]}")
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpus)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    ap.add_argument("--sizes", default="500,1000,2000", help="step counts (default 500,1000,2000)")
    args = ap.parse_args()
    if not os.path.exists(IRCTL):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="irctl-dry-run-")
    env = dict(os.environ, IRCTL_STATE_DIR=os.path.join(tmp, "state"),
               IRCTL_CACHE_DIR=os.path.join(tmp, "cache"))
    for shape, make in (("chain", chain), ("rchain", reversed_chain), ("wide", wide)):
        for n in (int(s) for s in args.sizes.split(",")):
            name = f"{shape}{n}"
            d = write_playbook(tmp, name, make(n))
            dry = median_cpu([IRCTL, "run", name, "--playbooks", d, "--label", f"bench={name}",
                               "--dry-run"], env, args.runs)
            val = median_cpu([IRCTL, "validate", "--playbooks", d], env, args.runs)
            print(f"{shape:6} {n:5} steps: run --dry-run {dry * 1000:7.0f} ms "
                  f"({dry / n * 1e6:6.0f} us/step), validate {val * 1000:6.0f} ms")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
