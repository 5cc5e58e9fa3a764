#!/usr/bin/env python3
"""irctl benchmarks, as whole processes, side by side with bash and make.

Usage: cargo build --release && python3 benches/bench.py [--runs N]

Each case is timed over N runs (median wall time) and reports the peak RSS of
the slowest child. Nothing here asserts: the figures are for the closing note
and for comparing changes, not a pass/fail gate. The engine's per-step
overhead against bash, in paired runs and against its targets, is measured by
benches/vs_bash.py.
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


def measure(cmd, runs, cwd=None, env=None):
    walls = []
    peak = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait4 gives this child's own peak RSS (KiB on Linux), not the session's.
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t0)
        peak = max(peak, usage.ru_maxrss)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            sys.exit(f"{cmd} failed ({code}): {err.decode()[-2000:]}")
    return statistics.median(walls), peak


def report(results):
    """Prints (case, median wall seconds, peak RSS KiB) rows as a table."""
    width = max(len(name) for name, _, _ in results) + 1
    print(f"{'case':{width}} {'median wall':>12} {'peak RSS':>10}")
    for name, wall, rss in results:
        print(f"{name:{width}} {wall * 1000:10.1f}ms {rss / 1024:8.1f}MB")


def playbook(i):
    return f"""version: 1
name: generated-{i:04d}
title: Generated playbook {i}
owner: team-{i % 17}
priority: {i % 10}
match:
  labels:
    - alertname="Alert{i}"
    - severity=~"critical|warning"
inputs:
  host: {{ default: "{{{{ incident.labels.instance }}}}", description: target host }}
secrets: [TOKEN_{i}]
steps:
  - id: check
    shell: curl -fsS http://{{{{ inputs.host }}}}/health
    timeout: 10s
  - id: metrics
    http: {{ url: "https://prom.example/api/v1/query", query: {{ query: "up{{instance='{{{{ inputs.host }}}}'}}" }} }}
  - id: restart
    needs: [check, metrics]
    confirm: "Restart on {{{{ inputs.host }}}}?"
    command: [systemctl, restart, "svc-{i}"]
    retry: {{ attempts: 3, backoff: 5s }}
    simulate_in_drill: true
  - id: escalate
    needs: [restart]
    trigger: on_failure
    notify: {{ webhook: {{ url: "https://hooks.example/x", headers: {{ authorization: "Bearer {{{{ secrets.TOKEN_{i} }}}}" }}, json: {{ text: "failed: {{{{ steps.restart.stderr }}}}" }} }} }}
  - id: announce
    needs: [check]
    notify: {{ console: {{ text: "checked {{{{ inputs.host }}}}: {{{{ steps.check.exit_code }}}}" }} }}
drill:
  schedule: "0 10 * * MON"
  incident: {{ title: drill, labels: {{ alertname: Alert{i}, severity: critical, instance: "host-{i}:9100" }} }}
  max_duration: 5m
"""


def write_dag(path, name, steps):
    with open(path, "w") as f:
        f.write(f"version: 1\nname: {name}\ntitle: {name}\nmatch:\n  labels: ['bench=\"{name}\"']\n"
                f"drill:\n  incident: {{ title: d, labels: {{ bench: {name} }} }}\nsteps:\n")
        for s in steps:
            f.write(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(IRCTL):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="irctl-bench-")
    state = os.path.join(tmp, "state")
    results = []

    # 1. validate 1,000 realistic playbooks.
    pdir = os.path.join(tmp, "validate")
    os.makedirs(pdir)
    for i in range(1000):
        with open(os.path.join(pdir, f"p{i:04d}.yaml"), "w") as f:
            f.write(playbook(i))
    results.append(("validate 1,000 playbooks", *measure([IRCTL, "validate", pdir], args.runs)))
    cache = os.path.join(tmp, "cache")
    cenv = dict(os.environ, IRCTL_CACHE_DIR=cache)
    match_cmd = [IRCTL, "match", "--playbooks", pdir, "--label", "alertname=Alert500", "--severity", "critical"]
    results.append(("match 1 incident vs 1,000 playbooks",
                    *measure(match_cmd, args.runs, env=cenv)))

    # 1b. match over 10,000: cold (no summary cache) and warm.
    big_dir = os.path.join(tmp, "validate10k")
    os.makedirs(big_dir)
    for i in range(10000):
        with open(os.path.join(big_dir, f"p{i:05d}.yaml"), "w") as f:
            f.write(playbook(i))
    match10k = [IRCTL, "match", "--playbooks", big_dir, "--label", "alertname=Alert5000", "--severity", "critical"]
    cold = []
    for r in range(max(1, args.runs // 2)):
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(measure(match10k, 1, env=cenv))
    results.append(("match vs 10,000 playbooks, cold cache",
                    statistics.median(c[0] for c in cold), max(c[1] for c in cold)))
    measure(match10k, 1, env=cenv)
    results.append(("match vs 10,000 playbooks, warm cache", *measure(match10k, args.runs, env=cenv)))

    # 2. a 200-step chain of `true`, vs a bash loop and make.
    chain = os.path.join(tmp, "chain")
    os.makedirs(chain)
    write_dag(os.path.join(chain, "chain.yaml"), "chain",
              [f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i-1}]\n" if i else "") for i in range(200)])
    env = dict(os.environ, IRCTL_STATE_DIR=state)
    run = [IRCTL, "run", "chain", "--playbooks", chain, "--label", "bench=chain"]
    results.append(("run: 200-step chain of `true`", *measure(run, args.runs, env=env)))
    results.append(("bash: 200 x sh -c true", *measure(["bash", "-c", "for i in $(seq 200); do sh -c true; done"], args.runs)))
    mk = os.path.join(tmp, "Makefile")
    with open(mk, "w") as f:
        f.write("all: s199\n" + "".join(f"s{i}:{' s%d' % (i-1) if i else ''}\n\t@sh -c true\n" for i in range(200)))
        f.write(".PHONY: all " + " ".join(f"s{i}" for i in range(200)) + "\n")
    if shutil.which("make"):
        results.append(("make: 200-target chain", *measure(["make", "-s", "-f", mk], args.runs)))

    # 2b. a 20-step chain vs Ansible's 20 tasks on localhost (when installed:
    # `pip install ansible-core`), the tool many runbooks are written in.
    if shutil.which("ansible-playbook"):
        chain20 = os.path.join(tmp, "chain20")
        os.makedirs(chain20)
        write_dag(os.path.join(chain20, "chain20.yaml"), "chain20",
                  [f"  - id: s{i}\n    shell: \"true\"\n" + (f"    needs: [s{i-1}]\n" if i else "") for i in range(20)])
        results.append(("run: 20-step chain of `true`",
                        *measure([IRCTL, "run", "chain20", "--playbooks", chain20, "--label", "bench=chain20"], args.runs, env=env)))
        play = os.path.join(tmp, "play.yml")
        with open(play, "w") as f:
            f.write("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n")
            f.write("".join(f"    - name: s{i}\n      command: \"true\"\n" for i in range(20)))
        aenv = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
        results.append(("ansible-playbook: 20 tasks `true`, local",
                        *measure(["ansible-playbook", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", play], max(1, args.runs // 2), env=aenv)))

    # 3. 200 independent `true` steps with --concurrency 8.
    wide = os.path.join(tmp, "wide")
    os.makedirs(wide)
    write_dag(os.path.join(wide, "wide.yaml"), "wide", [f"  - id: s{i}\n    shell: \"true\"\n" for i in range(200)])
    results.append(("run: 200 independent `true`, -c 8",
                    *measure([IRCTL, "run", "wide", "--playbooks", wide, "--label", "bench=wide", "--concurrency", "8"], args.runs, env=env)))
    if shutil.which("make"):
        with open(mk, "w") as f:
            f.write("all: " + " ".join(f"s{i}" for i in range(200)) + "\n" + "".join(f"s{i}:\n\t@sh -c true\n" for i in range(200)))
            f.write(".PHONY: all " + " ".join(f"s{i}" for i in range(200)) + "\n")
        results.append(("make -j8: 200 independent targets", *measure(["make", "-s", "-j8", "-f", mk], args.runs)))

    # 4. 10 independent `sleep 1` with --concurrency 10.
    sleepy = os.path.join(tmp, "sleepy")
    os.makedirs(sleepy)
    write_dag(os.path.join(sleepy, "sleepy.yaml"), "sleepy", [f"  - id: s{i}\n    shell: sleep 1\n" for i in range(10)])
    results.append(("run: 10 x `sleep 1`, -c 10",
                    *measure([IRCTL, "run", "sleepy", "--playbooks", sleepy, "--label", "bench=sleepy", "--concurrency", "10"], max(1, args.runs // 2), env=env)))
    results.append(("bash: 10 x sleep 1 & wait", *measure(["bash", "-c", "for i in $(seq 10); do sleep 1 & done; wait"], max(1, args.runs // 2))))

    # 5. a 1,000-step DAG (10 wide layers), peak memory.
    big = os.path.join(tmp, "big")
    os.makedirs(big)
    steps = []
    for i in range(1000):
        needs = f"    needs: [s{i-10}]\n" if i >= 10 else ""
        steps.append(f"  - id: s{i}\n    shell: \"true\"\n{needs}")
    write_dag(os.path.join(big, "big.yaml"), "big", steps)
    results.append(("run: 1,000-step DAG, -c 8",
                    *measure([IRCTL, "run", "big", "--playbooks", big, "--label", "bench=big", "--concurrency", "8"], 1, env=env)))

    report(results)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
