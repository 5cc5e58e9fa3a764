//! `irctl serve`'s queue through the real binary: a delivery whose playbook
//! has no free `concurrency` slot goes back to the queue instead of holding
//! a worker (others keep flowing; each still runs once, in order, across a
//! restart), held attempts show in `irctl runs` and `/api/runs`, and a
//! playbook left to people by `--auto-only` is a skip, not a failure.

#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serve::{Server, alertmanager, bearer, deliveries, runs};
use wait::wait_until;

const TOKEN: &str = "t0ken-queue-0001";
const STARTS: &str = "2024-01-01T10:00:00Z";

/// A temp dir with `playbooks` and a secrets file holding the bearer token.
fn setup(playbooks: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("irctl-serve-queue")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::create_dir_all(dir.path().join("marks")).unwrap();
    for (name, yaml) in playbooks {
        std::fs::write(dir.path().join("playbooks").join(name), yaml).unwrap();
    }
    std::fs::write(
        dir.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let marks = dir.join("marks").display().to_string();
    let mut args = vec!["--playbooks", "playbooks", "--secrets-file", "secrets.env"];
    args.extend_from_slice(extra);
    Server::start(dir, &args, &[("MARKS", &marks)])
}

fn post(server: &Server, alertname: &str) {
    let r = server.post(
        "/hooks/alertmanager",
        &bearer(TOKEN),
        alertmanager(alertname, "firing", STARTS).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
}

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("marks/ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until `marks` holds `line`.
fn wait_mark(dir: &Path, server: &Server, line: &str, limit: Duration) {
    wait_until(
        Instant::now() + limit,
        Duration::from_millis(50),
        &format!("no `{line}` in {:?}:\n{}", marks(dir), server.stderr()),
        || marks(dir).iter().any(|l| l == line).then_some(()),
    );
}

/// Waits (bounded) until serve has stored `n` deliveries and finished them all.
fn wait_done(server: &Server, n: usize, limit: Duration) -> Vec<serde_json::Value> {
    wait_until(
        Instant::now() + limit,
        Duration::from_millis(100),
        &format!("{n} deliveries not all done:\n{}", server.stderr()),
        || {
            let d = deliveries(server, TOKEN);
            (d.len() == n && d.iter().all(|x| x["state"] == "done")).then_some(d)
        },
    )
}

/// `irctl runs` of the state directory in `dir`, with `args`.
fn irctl_runs(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("IRCTL_STATE_DIR")
        .args(["runs", "--state-dir", "state"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Playbook `slow` takes any `Slow*` alert, one run at a time, for 4 s.
const SLOW: &str = r#"version: 1
name: slow
title: One at a time
auto: true
concurrency: 1
match:
  labels: ['alertname=~"Slow.*"']
steps:
  - id: act
    shell: |
      echo "start {{ incident.labels.alertname }}" >> "$MARKS/ran"
      sleep 4
      echo "end {{ incident.labels.alertname }}" >> "$MARKS/ran"
"#;

/// Playbook `quick` takes the `Quick` alert at once.
const QUICK: &str = r#"version: 1
name: quick
title: Quick
auto: true
match:
  labels: ['alertname="Quick"']
steps:
  - id: act
    shell: echo "start {{ incident.labels.alertname }}" >> "$MARKS/ran"
"#;

#[test]
fn a_run_waiting_for_a_slot_holds_no_worker_and_each_runs_once_in_order() {
    let dir = setup(&[("slow.yaml", SLOW), ("quick.yaml", QUICK)]);
    let d = dir.path();
    let mut server = start(d, &["--max-runs", "2"]);
    post(&server, "Slow1");
    wait_mark(d, &server, "start Slow1", Duration::from_secs(30));
    for n in 2..=4 {
        post(&server, &format!("Slow{n}"));
    }
    // Slow2..4 wait for the slot without holding the second worker, so
    // Quick runs while Slow1 still has most of its 4 s to go.
    post(&server, "Quick");
    wait_mark(d, &server, "start Quick", Duration::from_secs(30));
    let seen = marks(d);
    assert!(
        !seen.iter().any(|l| l == "end Slow1"),
        "Quick waited for Slow1: {seen:?}\n{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("queued again, no worker held"),
        "{}",
        server.stderr()
    );
    // The waiting deliveries are visible while they wait.
    let table = irctl_runs(d, &[]);
    assert!(
        table.contains("held: waiting for a concurrency slot"),
        "{table}"
    );
    let api = runs(&server, TOKEN);
    assert!(
        api.iter()
            .any(|r| r["status"] == "held" && r["held"]["reason"] == "waiting"),
        "{api:?}"
    );
    let waiting = deliveries(&server, TOKEN);
    assert!(
        waiting
            .iter()
            .any(|x| x["waiting_for"] == serde_json::json!(["slow"])),
        "{waiting:?}"
    );

    // SIGKILL with deliveries waiting loses none and runs none twice.
    server.kill();
    let server = start(d, &["--max-runs", "2"]);
    let done = wait_done(&server, 5, Duration::from_secs(120));
    for x in &done {
        assert_eq!(x["outcome"], "succeeded", "{x}");
    }
    let expected: Vec<String> = (1..=4)
        .flat_map(|n| [format!("start Slow{n}"), format!("end Slow{n}")])
        .collect();
    let slow: Vec<String> = marks(d)
        .into_iter()
        .filter(|l| l.contains("Slow"))
        .collect();
    assert_eq!(slow, expected, "{}", server.stderr());
    assert_eq!(marks(d).iter().filter(|l| *l == "start Quick").count(), 1);
    let recorded = runs(&server, TOKEN);
    let ran: Vec<&serde_json::Value> = recorded.iter().filter(|r| r["status"] != "held").collect();
    assert_eq!(ran.len(), 5, "{recorded:?}");
    assert!(ran.iter().all(|r| r["status"] == "succeeded"), "{ran:?}");
    // The runs that waited record how long, as a waiting `irctl run` does.
    let state = d.join("state/runs");
    let waited = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("timeline.jsonl")).unwrap())
        .filter(|t| t.contains("for a free slot (`concurrency: 1`)"))
        .count();
    assert!(waited >= 2, "{waited} runs recorded their wait");
    // Nothing waits any more.
    assert!(
        !irctl_runs(d, &[]).contains("waiting for a concurrency slot"),
        "{}",
        irctl_runs(d, &[])
    );
}

#[test]
fn a_playbook_left_to_people_is_a_skip_not_a_failure() {
    let route = r#"version: 1
name: route
title: Tell the owner
kind: routing
auto: true
match: { labels: ['alertname=~"Db.*"'] }
steps:
  - id: tell
    shell: echo "routed {{ incident.labels.alertname }}" >> "$MARKS/ran"
"#;
    let fix = r#"version: 1
name: fix-db
title: Fix the database
match: { labels: ['alertname="DbDown"'] }
steps:
  - id: act
    shell: echo "fixed" >> "$MARKS/ran"
"#;
    let manual = r#"version: 1
name: manual-only
title: By hand
match: { labels: ['alertname="Manual"'] }
steps:
  - id: act
    shell: echo "manual" >> "$MARKS/ran"
"#;
    let dir = setup(&[
        ("route.yaml", route),
        ("fix.yaml", fix),
        ("manual.yaml", manual),
    ]);
    let d = dir.path();

    // The CLI: the routing playbook runs, the remediation is left to people, exit 0.
    std::fs::write(
        d.join("db.json"),
        alertmanager("DbDown", "firing", "2024-01-02T10:00:00Z"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(d)
        .env("NO_COLOR", "1")
        .env("MARKS", d.join("marks"))
        .env_remove("IRCTL_STATE_DIR")
        .args([
            "run",
            "--incident",
            "db.json",
            "--auto-only",
            "--playbooks",
            "playbooks",
            "--state-dir",
            "cli-state",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("note: playbook `fix-db` is not `auto: true`, so it is not run unattended"),
        "{stderr}"
    );
    assert_eq!(marks(d), ["routed DbDown"]);

    // Serve: the same delivery succeeds; one for the manual playbook alone
    // is `skipped: not auto`; both are counted as not_auto, neither failed.
    std::fs::remove_file(d.join("marks/ran")).unwrap();
    let server = start(d, &[]);
    post(&server, "DbDown");
    post(&server, "Manual");
    let done = wait_done(&server, 2, Duration::from_secs(60));
    let outcome = |needle: &str| {
        done.iter()
            .find(|x| x["output"].as_str().unwrap_or("").contains(needle))
            .map(|x| x["outcome"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no delivery says {needle}: {done:?}"))
    };
    assert_eq!(outcome("`fix-db` is not `auto: true`"), "succeeded");
    assert_eq!(
        outcome("`manual-only` is not `auto: true`"),
        "skipped: not auto"
    );
    assert_eq!(marks(d), ["routed DbDown"]);
    let log = server.stderr();
    assert!(
        log.contains("run succeeded (exit 0); not `auto: true`, left to people: fix-db"),
        "{log}"
    );
    assert!(
        log.contains(
            "run skipped: not auto (exit 0); not `auto: true`, left to people: manual-only"
        ),
        "{log}"
    );
    let metrics = server.get("/metrics", &[]).body;
    for want in [
        "irctl_serve_runs_held_total{playbook=\"fix-db\",reason=\"not_auto\"} 1",
        "irctl_serve_runs_held_total{playbook=\"manual-only\",reason=\"not_auto\"} 1",
        "irctl_serve_runs_total{playbook=\"route\",status=\"succeeded\"} 1",
    ] {
        assert!(metrics.contains(want), "{want}\n{metrics}");
    }
    assert!(!metrics.contains("outcome=\"failed\""), "{metrics}");
}

#[test]
fn a_throttled_delivery_shows_in_api_runs_with_its_reason_and_next_time() {
    let once = r#"version: 1
name: once
title: Once in a while
auto: true
once_within: 1h
match:
  labels: ['alertname=~"Once.*"']
steps:
  - id: act
    shell: echo ran
"#;
    let dir = setup(&[("once.yaml", once)]);
    let server = start(dir.path(), &[]);
    // One after the other: taken together, either could be the one that runs.
    post(&server, "Once1");
    wait_done(&server, 1, Duration::from_secs(60));
    post(&server, "Once2");
    wait_done(&server, 2, Duration::from_secs(60));
    let rows = runs(&server, TOKEN);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let held = rows
        .iter()
        .find(|r| r["status"] == "held")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(held["playbook"], "once");
    assert!(held["run_id"].is_null(), "{held}");
    assert_eq!(held["held"]["reason"], "once_within");
    assert_eq!(held["held"]["rule"], "once_within: 1h");
    let next: chrono::DateTime<chrono::Utc> = held["held"]["next_run_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let at: chrono::DateTime<chrono::Utc> = held["started"].as_str().unwrap().parse().unwrap();
    assert!(next > at, "{held}");
    // The repeat of a delivery that ran shows only with `all`.
    let r = server.post(
        "/hooks/alertmanager",
        &bearer(TOKEN),
        alertmanager("Once1", "firing", "2024-01-01T10:00:01Z").as_bytes(),
    );
    assert_eq!(r.status, 202);
    wait_done(&server, 3, Duration::from_secs(60));
    assert_eq!(runs(&server, TOKEN).len(), 2);
    let all = server.get("/api/runs?all=true", &bearer(TOKEN)).json();
    let all = all.as_array().unwrap();
    assert!(
        all.iter()
            .any(|r| r["held"]["reason"] == "repeat" && r["held"]["earlier_run"].is_string()),
        "{all:?}"
    );
}
