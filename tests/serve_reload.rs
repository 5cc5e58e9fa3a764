//! `irctl serve` reloading what it serves, through the real binary: SIGHUP
//! (without TLS) swaps in a directory's playbooks and payload mappings
//! whole — a removed mapping's hook answers 404, a new one works at once —
//! and a set that breaks a file is refused while the last good one keeps
//! serving (`/readyz` and `/metrics` say so); SIGHUP also reads the
//! secrets file again, and is ignored while serve drains. Serve with only
//! a Slack signing secret starts, says which endpoints are disabled, and
//! refuses the alert hooks.

#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serve::{Server, alertmanager, bearer};
use wait::wait_until;

const TOKEN: &str = "reload-t0ken-0001";
const TOKEN_NEW: &str = "reload-t0ken-0002";
const SIGNING: &str = "slack-signing-secret-only-1";

fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn example(name: &str) -> Vec<u8> {
    repo_file(&format!("examples/incidents/{name}"))
}

/// An `auto` playbook for alert `alertname` whose step runs `shell`.
fn playbook(name: &str, alertname: &str, shell: &str) -> String {
    format!(
        "version: 1\nname: {name}\ntitle: {name}\nauto: true\nmatch:\n  labels: ['alertname=\"{alertname}\"']\nsteps:\n  - id: act\n    shell: \"{shell}\"\n"
    )
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("irctl-serve-reload")
        .tempdir()
        .unwrap();
    let pb = dir.path().join("playbooks");
    std::fs::create_dir_all(pb.join("sources")).unwrap();
    std::fs::write(pb.join("one.yaml"), playbook("one", "One", "true")).unwrap();
    std::fs::write(
        pb.join("sources/datadog.yaml"),
        repo_file("playbooks/sources/datadog.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    dir
}

fn start(dir: &Path) -> Server {
    Server::start(
        dir,
        &[
            "--playbooks",
            "playbooks",
            "--secrets-file",
            "secrets.env",
            "--grace",
            "30s",
        ],
        &[],
    )
}

/// Sends SIGHUP and waits (bounded) until serve has logged `needle` more
/// often than before.
fn hangup(server: &Server, needle: &str) {
    let before = server.stderr().matches(needle).count();
    server.signal(Signal::SIGHUP);
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        &format!(
            "serve never logged `{needle}` after SIGHUP:\n{}",
            server.stderr()
        ),
        || (server.stderr().matches(needle).count() > before).then_some(()),
    );
}

fn metric(server: &Server, name: &str) -> String {
    let m = server.get("/metrics", &[]).body;
    m.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

#[test]
fn sighup_swaps_mappings_and_playbooks_whole_and_keeps_the_last_good_set() {
    let dir = setup();
    let pb = dir.path().join("playbooks");
    let server = start(dir.path());
    let dd = example("datadog-webhook.json");
    let og = example("opsgenie-create.json");
    assert_eq!(
        server.post("/hooks/datadog", &bearer(TOKEN), &dd).status,
        202
    );
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        404
    );
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200);
    assert!(
        ready.body.starts_with("ready\nserving: 1 playbook\n"),
        "{}",
        ready.body
    );

    // One mapping goes, another comes, a playbook is added: SIGHUP (no TLS) applies it all.
    std::fs::remove_file(pb.join("sources/datadog.yaml")).unwrap();
    std::fs::write(
        pb.join("sources/opsgenie.yaml"),
        repo_file("playbooks/sources/opsgenie.yaml"),
    )
    .unwrap();
    std::fs::write(pb.join("two.yaml"), playbook("two", "Two", "true")).unwrap();
    hangup(&server, "SIGHUP: playbooks: serving");
    let log = server.stderr();
    assert!(
        log.contains(
            "serving 2 playbooks (was 1); new hooks: /hooks/opsgenie; removed hooks: /hooks/datadog"
        ),
        "{log}"
    );
    assert!(log.contains("SIGHUP: credentials reloaded from `"), "{log}");
    assert_eq!(
        server.post("/hooks/datadog", &bearer(TOKEN), &dd).status,
        404
    );
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        202
    );
    assert!(
        server
            .get("/readyz", &[])
            .body
            .contains("serving: 2 playbooks")
    );
    assert_eq!(metric(&server, "irctl_serve_playbooks_loaded "), "2");

    // A playbook that breaks: the whole new set is refused, mapping included.
    std::fs::write(pb.join("two.yaml"), "version: 1\nname: [broken\n").unwrap();
    std::fs::remove_file(pb.join("sources/opsgenie.yaml")).unwrap();
    hangup(&server, "SIGHUP: playbooks not reloaded");
    let log = server.stderr();
    assert!(log.contains("two.yaml` has errors"), "{log}");
    assert!(log.contains("still serving 2 playbooks"), "{log}");
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        202
    );
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200, "still ready on the last good set");
    assert!(
        ready.body.contains("last reload: failed at "),
        "{}",
        ready.body
    );
    assert_eq!(metric(&server, "irctl_serve_reload_failed "), "1");
    assert_eq!(
        metric(&server, "irctl_serve_reloads_total{outcome=\"refused\"} "),
        "1"
    );

    // Fixed: served again, and the failure is gone.
    std::fs::write(pb.join("two.yaml"), playbook("two", "Two", "true")).unwrap();
    hangup(&server, "SIGHUP: playbooks: serving");
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        404
    );
    assert!(!server.get("/readyz", &[]).body.contains("last reload"));
    assert_eq!(metric(&server, "irctl_serve_reload_failed "), "0");

    // The secrets file, rotated: the new token counts, the old one no longer.
    std::fs::write(
        dir.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN_NEW}\n"),
    )
    .unwrap();
    hangup(&server, "SIGHUP: credentials reloaded");
    let body = alertmanager("Nothing", "firing", "2024-01-01T10:00:00Z");
    let r = server.post("/hooks/alertmanager", &bearer(TOKEN), body.as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let r = server.post("/hooks/alertmanager", &bearer(TOKEN_NEW), body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
    // A file that would leave no credential keeps the current ones.
    std::fs::write(dir.path().join("secrets.env"), "# emptied by mistake\n").unwrap();
    hangup(&server, "credentials not reloaded");
    let r = server.post("/hooks/alertmanager", &bearer(TOKEN_NEW), body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
}

#[test]
fn sighup_while_draining_is_ignored_and_serve_still_exits_cleanly() {
    let dir = setup();
    std::fs::write(
        dir.path().join("playbooks/slow.yaml"),
        playbook("slow", "Slow", "sleep 3"),
    )
    .unwrap();
    let mut server = start(dir.path());
    let body = alertmanager("Slow", "firing", "2024-01-01T10:00:00Z");
    let r = server.post("/hooks/alertmanager", &bearer(TOKEN), body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        "the slow run starts",
        || (metric(&server, "irctl_serve_runs_in_flight ") == "1").then_some(()),
    );
    server.signal(Signal::SIGTERM);
    wait_until(
        Instant::now() + Duration::from_secs(10),
        Duration::from_millis(20),
        "serve starts draining",
        || {
            server
                .stderr()
                .contains("stopping: no new deliveries")
                .then_some(())
        },
    );
    server.signal(Signal::SIGHUP);
    assert_eq!(server.wait(Duration::from_secs(60)), Some(0));
    let log = server.stderr();
    assert!(log.contains("SIGHUP ignored: serve is stopping"), "{log}");
    assert!(!log.contains("SIGHUP: playbooks"), "{log}");
}

#[test]
fn slack_only_serve_starts_and_says_which_endpoints_are_disabled() {
    let dir = setup();
    std::fs::write(
        dir.path().join("secrets.env"),
        format!("SERVE_SLACK_SIGNING_SECRET={SIGNING}\n"),
    )
    .unwrap();
    let server = start(dir.path());
    let log = server.stderr();
    assert!(
        log.contains("endpoints authenticated: /hooks/slack/interactivity; disabled (answer 403): /hooks/alertmanager, /hooks/grafana, /hooks/pagerduty, /hooks/cloudevents, /hooks/MAPPING, /api"),
        "{log}"
    );
    let body = alertmanager("One", "firing", "2024-01-01T10:00:00Z");
    for path in [
        "/hooks/alertmanager",
        "/hooks/grafana",
        "/hooks/cloudevents",
    ] {
        let r = server.post(path, &bearer(TOKEN), body.as_bytes());
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        let r = server.post(path, &[], body.as_bytes());
        assert_eq!(r.status, 403, "{path} unauthenticated: {}", r.body);
    }
    let r = server.post("/hooks/datadog", &[], &example("datadog-webhook.json"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(server.get("/api/runs", &bearer(TOKEN)).status, 403);
    // The Slack endpoint is up and checks its signature.
    let r = server.post(
        "/hooks/slack/interactivity",
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            (
                "X-Slack-Request-Timestamp",
                chrono::Utc::now().timestamp().to_string(),
            ),
            ("X-Slack-Signature", "v0=00".to_string()),
        ],
        b"payload=%7B%7D",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(server.get("/readyz", &[]).status, 200);

    // With no credential at all, serve still refuses to start.
    std::fs::write(dir.path().join("secrets.env"), "# nothing\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--state-dir", "state2"])
        .args(["--playbooks", "playbooks", "--secrets-file", "secrets.env"])
        .env_remove("IRCTL_PLAYBOOKS")
        .env_remove("IRCTL_REPO")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no credentials configured"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
