//! `irctl match`: real payloads to the right playbook, explained; and a real
//! Prometheus Alertmanager as the sender.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/wait.rs"]
mod wait;

use std::time::{Duration, Instant};

use common::Test;
use receiver::Receiver;
use wait::wait_until;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn bundled() -> String {
    format!("{ROOT}/playbooks")
}

/// `match --playbooks <bundled> --incident INCIDENT`.
fn match_args(incident: &str) -> Vec<String> {
    ["match", "--playbooks", &bundled(), "--incident", incident]
        .map(str::to_string)
        .to_vec()
}

fn example(name: &str) -> String {
    format!("{ROOT}/examples/incidents/{name}")
}

#[test]
fn example_incidents_select_their_bundled_playbooks() {
    for (file, playbook) in [
        ("disk-filling.json", "disk-filling-up"),
        ("http-5xx.json", "http-5xx-rate-high"),
        ("pod-crashloop.json", "pod-crash-looping"),
        ("cert-expiry.json", "tls-cert-expiring"),
        ("pg-connections.json", "pg-connections-saturated"),
        ("target-down.json", "scrape-target-down"),
    ] {
        let out = Test::new()
            .args(match_args(&example(file)))
            .args(["--format", "json"])
            .run();
        assert_eq!(out.json()["selected"], playbook, "{file}");
    }
}

#[test]
fn every_documented_payload_format_is_read() {
    for (file, source) in [
        ("alertmanager-firing.json", "alertmanager"),
        ("grafana-firing.json", "grafana"),
        ("pagerduty-v3-triggered.json", "pagerduty-webhook"),
        ("pagerduty-events-v2-trigger.json", "pagerduty-event"),
        ("cloudevents-alertmanager.json", "cloudevents"),
        ("irctl-simple.yaml", "irctl"),
    ] {
        // Nothing in the bundled library handles these: exit 1, but the incident is read.
        let out = Test::new()
            .args(match_args(&example(file)))
            .args(["--format", "json"])
            .status(1)
            .run();
        let doc = out.json();
        assert_eq!(doc["incident"]["source"], source, "{file}");
        assert!(doc["selected"].is_null());
    }
}

#[test]
fn the_table_explains_why_each_playbook_did_not_match() {
    let pb = "version: 1\nname: crit-only\ntitle: C\nmatch:\n  labels: ['alertname=\"Disk\"', 'severity=~\"critical\"']\ndrill:\n  incident: { title: d, labels: { alertname: Disk, severity: critical } }\nsteps:\n  - id: a\n    shell: \"true\"\n";
    let when = "version: 1\nname: payments-only\ntitle: P\nmatch:\n  labels: ['alertname=\"Disk\"']\n  when: incident.labels.service in [\"payments\"]\ndrill:\n  incident: { title: d, labels: { alertname: Disk, service: payments } }\nsteps:\n  - id: a\n    shell: \"true\"\n";
    Test::new()
        .playbook("c.yaml", pb)
        .playbook("p.yaml", when)
        .args([
            "match",
            "--label",
            "alertname=Disk",
            "--label",
            "service=web",
            "--severity",
            "warning",
        ])
        .status(1)
        .stdout_contains("severity=~\"critical\" \u{2014} incident has severity=\"warning\"")
        .stdout_contains("when `incident.labels.service in [\"payments\"]` was false")
        .stdout_contains("no playbook matched")
        .run();
}

#[test]
fn stdin_and_forced_format() {
    let payload = std::fs::read(example("disk-filling.json")).unwrap();
    let out = Test::new()
        .args(match_args("-"))
        .args(["--format", "json"])
        .stdin(payload.clone())
        .run();
    let doc = out.json();
    assert_eq!(doc["selected"], "disk-filling-up");
    assert_eq!(doc["incident"]["source"], "alertmanager");
    // A forced format is read as that format, not detected: Grafana's
    // webhook shares Alertmanager's envelope, and the incident says Grafana.
    let out = Test::new()
        .args(match_args("-"))
        .args(["--incident-format", "grafana", "--format", "json"])
        .stdin(payload.clone())
        .run();
    let doc = out.json();
    assert_eq!(doc["incident"]["source"], "grafana");
    assert_eq!(doc["selected"], "disk-filling-up");
    // Forced to a format the payload is not, the payload fails that format's rule.
    Test::new()
        .args(match_args("-"))
        .args(["--incident-format", "pagerduty-event"])
        .stdin(payload.clone())
        .status(2)
        .stdout("")
        .stderr(
            "error: `<stdin>` does not match incident format `pagerduty-event`: it needs an object with `event_action` (`trigger`, `acknowledge` or `resolve`) and `payload` (PagerDuty Events API v2)\n",
        )
        .run();
    // A format irctl does not know is named, with the ones it does.
    Test::new()
        .args(match_args("-"))
        .args(["--incident-format", "nagios"])
        .stdin(payload)
        .status(2)
        .stdout("")
        .stderr_contains("unknown incident format `nagios`; supported: alertmanager, grafana,")
        .run();
}

#[test]
fn bad_payloads_are_exit_2_with_a_clear_error() {
    Test::new()
        .file("bad.json", "{\n  \"version\": \"4\",\n  \"alerts\": [\n")
        .args(match_args("bad.json"))
        .status(2)
        .stderr_contains("bad.json")
        .stderr_contains("line")
        .run();
    Test::new()
        .file("what.json", r#"{"hello": "world"}"#)
        .args(match_args("what.json"))
        .status(2)
        .stderr_contains("alertmanager")
        .stderr_contains("pagerduty")
        .run();
    Test::new()
        .file(
            "empty.json",
            r#"{"version":"4","groupKey":"g","status":"firing","receiver":"r","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"","alerts":[]}"#,
        )
        .args(match_args("empty.json"))
        .status(2)
        .run();
    // The 10 MiB cap: a payload of exactly 10 MiB is read, one byte more is
    // refused by the cap itself, not by a parser giving up on it.
    const CAP: usize = 10 * 1024 * 1024;
    let mut at_cap = std::fs::read(example("disk-filling.json")).unwrap();
    at_cap.resize(CAP, b' ');
    let out = Test::new()
        .file("at-cap.json", &at_cap)
        .args(match_args("at-cap.json"))
        .args(["--format", "json"])
        .run();
    assert_eq!(out.json()["selected"], "disk-filling-up");
    let mut over = at_cap;
    over.push(b' ');
    Test::new()
        .file("big.json", over)
        .args(match_args("big.json"))
        .status(2)
        .stdout("")
        .stderr("error: incident `big.json` is larger than the 10 MiB limit (10485760 bytes)\n")
        .run();
    Test::new()
        .args(match_args("missing.json"))
        .status(2)
        .stderr_contains("missing.json")
        .run();
}

#[test]
fn label_values_are_data_not_templates() {
    let pb = "version: 1\nname: echo\ntitle: E\nmatch:\n  labels: ['alertname=\"X\"']\ndrill:\n  incident: { title: d, labels: { alertname: X } }\nsteps:\n  - id: a\n    shell: \"true\"\n";
    let out = Test::new()
        .playbook("e.yaml", pb)
        .args([
            "match",
            "--format",
            "json",
            "--label",
            "alertname=X",
            "--label",
            "evil={{ 7*7 }}{% for x in range(99999999) %}{% endfor %}",
        ])
        .run();
    assert_eq!(
        out.json()["incident"]["labels"]["evil"],
        "{{ 7*7 }}{% for x in range(99999999) %}{% endfor %}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Alertmanager sends its webhook to us; irctl matches that exact payload.
#[test]
fn real_alertmanager_webhook_selects_the_playbook() {
    let bin = [
        "/usr/bin/prometheus-alertmanager",
        "/usr/local/bin/alertmanager",
        "/usr/bin/alertmanager",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        #[allow(clippy::disallowed_methods)] // whether the test runs in CI is not irctl's to know
        let in_ci = std::env::var_os("CI").is_some();
        assert!(
            !in_ci,
            "prometheus-alertmanager is not installed, and CI must run this test (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED real_alertmanager_webhook_selects_the_playbook: prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    };
    let hook = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: irctl\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: irctl\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            hook.url("/alertmanager")
        ),
    )
    .unwrap();
    let port = free_port();
    let _am = Killed(
        std::process::Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = irctl::tls::client_builder().build().unwrap();
    let alert = serde_json::json!([{
        "labels": {
            "alertname": "NodeFilesystemAlmostOutOfSpace", "severity": "warning",
            "instance": "localhost:9100", "mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "job": "node"
        },
        "annotations": { "summary": "Filesystem has less than 5% space left." },
        "generatorURL": "http://127.0.0.1:9090/graph"
    }]);
    let start = Instant::now();
    // Bounded: Alertmanager needs a moment to listen; then one group_wait to send.
    wait_until(
        start + Duration::from_secs(30),
        Duration::from_millis(200),
        "alertmanager did not accept the alert",
        || {
            rt.block_on(async {
                client
                    .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
                    .json(&alert)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            })
            .then_some(())
        },
    );
    let payload = wait_until(
        start + Duration::from_secs(60),
        Duration::from_millis(100),
        "no webhook from alertmanager",
        || hook.requests().into_iter().next().map(|r| r.body),
    );
    let out = Test::new()
        .args(match_args("-"))
        .args(["--format", "json"])
        .stdin(payload.clone())
        .run();
    let doc = out.json();
    assert_eq!(doc["selected"], "disk-filling-up", "payload: {payload}");
    assert_eq!(doc["incident"]["source"], "alertmanager");
    assert_eq!(doc["incident"]["labels"]["mountpoint"], "/");
}

/// `match` and `run` remember each playbook file's summary by content: a
/// second invocation must agree with the first, an edit must be seen at
/// once, and a cache that lies must never make a broken playbook run.
#[test]
fn cached_summaries_follow_edits_and_never_run_a_broken_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = dir.path().join("playbooks");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&playbooks).unwrap();
    let write = |name: &str, priority: i64, step: &str| {
        std::fs::write(
            playbooks.join(format!("{name}.yaml")),
            format!(
                "version: 1\nname: {name}\ntitle: {name}\npriority: {priority}\nmatch:\n  labels: ['alertname=\"Disk\"']\nsteps:\n  - id: one\n    shell: {step}\n"
            ),
        )
        .unwrap();
    };
    write("low", 1, "echo low");
    write("high", 5, "echo high");
    let pb = playbooks.to_str().unwrap();
    let cache_s = cache.to_str().unwrap();
    let match_cmd = || {
        Test::new().env("IRCTL_CACHE_DIR", cache_s).args([
            "match",
            "--playbooks",
            pb,
            "--label",
            "alertname=Disk",
            "--format",
            "json",
        ])
    };
    let selected = || match_cmd().run().json()["selected"].clone();
    assert_eq!(selected(), "high");
    assert!(
        cache.join("playbook-index-v1.json").exists(),
        "the cache was written"
    );
    assert_eq!(selected(), "high", "a cached run agrees with the first");

    // An edit is a new blob: seen at once.
    write("low", 9, "echo low");
    assert_eq!(selected(), "low");

    // Broken after being cached as valid: skipped with the usual warning.
    std::fs::write(
        playbooks.join("low.yaml"),
        "version: 1\nname: low\nsteps: [\n",
    )
    .unwrap();
    let out = match_cmd()
        .stderr_contains("1 playbook file with errors skipped")
        .run();
    assert_eq!(out.json()["selected"], "high");

    // A cache that claims every file is valid (tampered, or from a buggy
    // build): `high` is broken now, and `run` must refuse it, not run it.
    std::fs::write(
        playbooks.join("high.yaml"),
        "version: 1\nname: high\ntitle: high\npriority: 5\nmatch:\n  labels: ['alertname=\"Disk\"']\nsteps:\n  - id: one\n    needs: [nope]\n    shell: touch ran\n",
    )
    .unwrap();
    let path = cache.join("playbook-index-v1.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let summary =
        serde_json::json!({"name": "high", "priority": 5, "labels": ["alertname=\"Disk\""]});
    let high_blob = {
        let out = std::process::Command::new("git")
            .args(["hash-object", playbooks.join("high.yaml").to_str().unwrap()])
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            _ => {
                eprintln!("SKIPPED tamper part: `git` is not installed");
                return;
            }
        }
    };
    doc["entries"][&high_blob] = summary;
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let state = dir.path().join("state");
    Test::new()
        .env("IRCTL_CACHE_DIR", cache_s)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .args([
            "run",
            "--playbooks",
            pb,
            "--label",
            "alertname=Disk",
            "--yes",
        ])
        .status(2)
        .stderr_contains("playbook `high` has errors")
        .run();
    assert!(!state.join("runs").exists(), "nothing ran");

    // Garbage in the cache file is ignored, not an error.
    write("high", 5, "echo high");
    std::fs::write(&path, "{not json").unwrap();
    assert_eq!(selected(), "high");
}

/// A two-pod crash loop as Alertmanager groups it (by alertname and
/// namespace): the common labels lack `pod`, a third pod has recovered.
const GROUP: &str = "pod-crashloop-group.json";

#[test]
fn a_grouped_crash_loop_selects_the_pod_playbook_once_per_firing_alert() {
    let out = Test::new()
        .args(match_args(&example(GROUP)))
        .args(["--format", "json"])
        .run();
    let doc = out.json();
    assert_eq!(doc["selected"], "pod-crash-looping");
    assert_eq!(
        doc["runs"],
        serde_json::json!([
            {"playbook": "pod-crash-looping", "alert": 0},
            {"playbook": "pod-crash-looping", "alert": 1},
        ])
    );
    let eval = doc["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "pod-crash-looping")
        .unwrap();
    assert_eq!(eval["per_alert"], true);
    let alerts = eval["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0]["key"], "5d8a0c3f71e2b964");
    assert_eq!(alerts[0]["distinct"]["pod"], "checkout-7d9f8b6c5-x2x9q");
    assert_eq!(alerts[1]["matched"], true);
    assert_eq!(alerts[2]["matched"], false);
    assert_eq!(alerts[2]["reason"], "alert is resolved, not firing");

    // The table shows which alert matched and why the other did not.
    let out = Test::new().args(match_args(&example(GROUP))).run();
    for line in [
        "pod-crash-looping (per alert)",
        "alert #0 pod=\"checkout-7d9f8b6c5-x2x9q\"",
        "alert #2 pod=\"checkout-7d9f8b6c5-p4r7t\"",
        "alert is resolved, not firing",
        "selected: pod-crash-looping, once per matching alert (#0, #1)",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
}

/// A per-alert playbook that records which alert it ran for.
const PER_POD: &str = r#"version: 1
name: per-pod
title: One pod
match:
  per_alert: true
  labels: ['alertname="KubePodCrashLooping"', 'pod=~"checkout-.+"']
drill:
  incident: { title: d, labels: { alertname: KubePodCrashLooping, pod: checkout-1 } }
steps:
  - id: which
    command: [echo, "pod={{ incident.alert.labels.pod }} fp={{ incident.alert.fingerprint }} labels={{ incident.labels.pod }}"]
"#;

#[test]
fn run_runs_a_per_alert_playbook_for_each_firing_alert_with_that_alert_in_hand() {
    let out = Test::new()
        .playbook("per-pod.yaml", PER_POD)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--incident", &example(GROUP)])
        .run();
    let runs: Vec<std::path::PathBuf> = std::fs::read_dir(out.tempdir.path().join("state/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 2, "one run per firing alert");
    let mut seen: Vec<String> = runs
        .iter()
        .map(|r| {
            let text = std::fs::read_to_string(r.join("timeline.jsonl")).unwrap();
            let line = text
                .lines()
                .find(|l| l.contains("\"step_finished\""))
                .unwrap();
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["stdout"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    seen.sort();
    assert!(
        seen[0].contains(
            "pod=checkout-7d9f8b6c5-k8m2w fp=a41c7e29b0d3f815 labels=checkout-7d9f8b6c5-k8m2w"
        ),
        "{seen:?}"
    );
    assert!(
        seen[1].contains(
            "pod=checkout-7d9f8b6c5-x2x9q fp=5d8a0c3f71e2b964 labels=checkout-7d9f8b6c5-x2x9q"
        ),
        "{seen:?}"
    );

    // The same group delivered again (Alertmanager's group_interval): each
    // alert's run is a repeat of its own earlier run, so nothing runs again.
    let again = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"));
        cmd.current_dir(out.tempdir.path())
            .env("IRCTL_STATE_DIR", "state")
            .env("XDG_CACHE_HOME", out.tempdir.path().join(".cache"))
            .args(["run", "--incident", &example(GROUP)])
            .args(extra);
        let o = cmd.output().unwrap();
        let count = std::fs::read_dir(out.tempdir.path().join("state/runs"))
            .unwrap()
            .count();
        (o, count)
    };
    let (repeat, count) = again(&[]);
    let stderr = String::from_utf8_lossy(&repeat.stderr);
    assert_eq!(repeat.status.code(), Some(0), "{stderr}");
    assert_eq!(count, 2, "a repeated group runs nothing: {stderr}");
    assert_eq!(
        stderr.matches("already ran for this episode").count(),
        2,
        "one repeat per alert: {stderr}"
    );
    let (forced, count) = again(&["--again"]);
    assert_eq!(forced.status.code(), Some(0));
    assert_eq!(count, 4, "`--again` runs once more per alert");
}

#[test]
fn a_per_alert_playbook_matching_no_firing_alert_explains_each() {
    let pb = PER_POD.replace("checkout-.+", "search-.+");
    let out = Test::new()
        .playbook("per-pod.yaml", &pb)
        .args(["match", "--incident", &example(GROUP), "--format", "json"])
        .status(1)
        .run();
    let doc = out.json();
    assert!(doc["selected"].is_null());
    assert_eq!(
        doc["playbooks"][0]["reason"],
        "per alert: none of 3 alerts matches (alert #0: pod=~\"search-.+\" \u{2014} incident has pod=\"checkout-7d9f8b6c5-x2x9q\")"
    );
}

/// A payload `labels` times `"k{i}": "v"` entries in one alert.
fn hostile_labels(labels: usize) -> Vec<u8> {
    let mut out =
        String::from(r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"#);
    for i in 0..labels {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"k{i}\":\"v\""));
    }
    out.push_str("}}]}");
    out.into_bytes()
}

#[test]
fn payloads_beyond_the_label_and_alert_limits_are_refused_by_name() {
    // 650,000 labels in under 10 MiB: refused before anything is copied.
    let payload = hostile_labels(650_000);
    assert!(payload.len() < 10 * 1024 * 1024);
    Test::new()
        .file("labels.json", &payload)
        .args(match_args("labels.json"))
        .status(2)
        .stdout("")
        .stderr("error: incident `labels.json` is too large: `alerts[0].labels` has 650000 entries, more than the limit of 256\n")
        .run();
    // At the limit it is read.
    Test::new()
        .file("ok.json", hostile_labels(256))
        .args(match_args("ok.json"))
        .status(1)
        .stdout_contains("no playbook matched")
        .run();
    let alerts = format!(
        r#"{{"status":"firing","alerts":[{}]}}"#,
        vec![r#"{"labels":{"a":"b"}}"#; 1001].join(",")
    );
    Test::new()
        .file("alerts.json", alerts)
        .args(match_args("alerts.json"))
        .status(2)
        .stderr("error: incident `alerts.json` is too large: `alerts` has 1001 alerts, more than the limit of 1000\n")
        .run();
    let long = format!(
        r#"{{"title":"t","labels":{{"x":"{}"}}}}"#,
        "a".repeat(64 * 1024 + 1)
    );
    Test::new()
        .file("long.json", long)
        .args(match_args("long.json"))
        .status(2)
        .stderr("error: incident `long.json` is too large: `labels.x` is 65537 bytes, more than the limit of 65536\n")
        .run();
}

#[test]
fn a_payload_padded_with_fields_no_parser_reads_is_bounded_too() {
    // `incident.raw` keeps the payload whole: 600,000 small objects in 9 MB
    // cost a gigabyte once copied for templates.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example("disk-filling.json")).unwrap()).unwrap();
    doc["junk"] = (0..600_000)
        .map(|i| serde_json::json!({ "k": i }))
        .collect();
    Test::new()
        .file("junk.json", doc.to_string())
        .args(match_args("junk.json"))
        .status(2)
        .stdout("")
        .stderr("error: incident `junk.json` is too large: `payload` has more than 200000 JSON values, the limit\n")
        .run();
}
