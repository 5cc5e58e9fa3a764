//! `irctl serve --repo … --refresh` through the real binary, against a real
//! `git daemon` on 127.0.0.1: a pushed commit reaches the runs of later
//! deliveries, each run records the commit (and ref) it was pinned to, and
//! while the daemon is down deliveries keep running on the last good
//! commit with one warning per failure streak. A pushed commit also swaps
//! the mappings serve answers with, a commit that does not check is not
//! served (nor run), and SIGHUP fetches at once.

#[path = "support/gitserver.rs"]
mod gitserver;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::time::{Duration, Instant};

use gitserver::{Daemon, Repo};
use serve::{Server, alertmanager, bearer, runs};
use wait::wait_until;

const TOKEN: &str = "refresh-t0ken-0001";
const STARTS: &str = "2024-01-01T10:00:00Z";

/// An `auto` playbook for every `Refresh*` alert whose step echoes `version`.
fn playbook(version: &str) -> String {
    format!(
        "version: 1\nname: refreshed\ntitle: Refreshed {version}\nauto: true\nmatch:\n  labels: ['alertname=~\"Refresh.*\"']\nsteps:\n  - id: say\n    shell: \"echo {version}\"\n"
    )
}

/// Posts a firing alert and waits (bounded) until its run is recorded;
/// the run's summary.
fn deliver(server: &Server, alertname: &str, runs_before: usize) -> serde_json::Value {
    let r = server.post(
        "/hooks/alertmanager",
        &bearer(TOKEN),
        alertmanager(alertname, "firing", STARTS).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = runs(server, TOKEN);
        if all.len() > runs_before && all.iter().all(|r| r["status"] != "unfinished") {
            return all
                .into_iter()
                .find(|r| r.to_string().contains(alertname))
                .unwrap_or_else(|| panic!("no run for {alertname}"));
        }
        assert!(
            Instant::now() < deadline,
            "no finished run for {alertname}: {all:?}\n{:?}\n{}",
            serve::deliveries(server, TOKEN),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn timeline(run: &serde_json::Value) -> String {
    std::fs::read_to_string(run["timeline"].as_str().expect("timeline path")).unwrap()
}

#[test]
fn refresh_moves_new_runs_to_pushed_commits_and_keeps_the_last_good_one_offline() {
    let repo = Repo::new();
    repo.write("playbooks/refreshed.yaml", &playbook("version-one"));
    let first = repo.commit("v1");
    repo.push();
    let daemon = Daemon::start(&repo);
    std::fs::write(
        repo.root.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let cache = repo.cache();
    let home = repo.home();
    let server = Server::start(
        repo.root.path(),
        &[
            "--repo",
            &daemon.url(),
            "--ref",
            "main",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--refresh",
            "1s",
            "--fetch-timeout",
            "2s",
            "--secrets-file",
            "secrets.env",
        ],
        &[("HOME", home.to_str().unwrap())],
    );

    let run = deliver(&server, "RefreshOne", 0);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["commit"], first.as_str(), "{run}");
    let text = timeline(&run);
    assert!(text.contains("version-one"), "{text}");
    assert!(text.contains("\"ref\":\"main\""), "{text}");

    // A pushed commit: after a refresh, new deliveries run it.
    repo.write("playbooks/refreshed.yaml", &playbook("version-two"));
    let second = repo.commit("v2");
    repo.push();
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "serve picks up the pushed commit",
        || server.stderr().contains(&second[..12]).then_some(()),
    );
    let run = deliver(&server, "RefreshTwo", 1);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["commit"], second.as_str(), "{run}");
    let text = timeline(&run);
    assert!(text.contains("version-two"), "{text}");
    assert!(text.contains("\"ref\":\"main\""), "{text}");

    // The Git server goes away: deliveries still run, on the last good
    // commit, and the log warns once for the whole streak.
    drop(daemon);
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "two failed refreshes counted",
        || {
            let m = server.get("/metrics", &[]);
            m.body
                .lines()
                .find_map(|l| l.strip_prefix("irctl_serve_git_refresh_failures_total "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .filter(|n| *n >= 2)
        },
    );
    let run = deliver(&server, "RefreshThree", 2);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["commit"], second.as_str(), "{run}");
    let log = server.stderr();
    assert_eq!(
        log.matches("cannot refresh playbooks").count(),
        1,
        "one warning per failure streak:\n{log}"
    );
    let metrics = server.get("/metrics", &[]).body;
    let last = metrics
        .lines()
        .find_map(|l| l.strip_prefix("irctl_serve_git_refresh_last_success_timestamp_seconds "))
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(last > 1_600_000_000, "{metrics}");
}

fn metric(server: &Server, name: &str) -> String {
    let m = server.get("/metrics", &[]).body;
    m.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn example(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/incidents")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_refresh_swaps_the_served_mappings_and_a_commit_that_breaks_them_is_not_served() {
    let repo = Repo::new();
    repo.write("playbooks/refreshed.yaml", &playbook("version-one"));
    repo.write(
        "playbooks/sources/datadog.yaml",
        &repo_file("playbooks/sources/datadog.yaml"),
    );
    let first = repo.commit("v1");
    repo.push();
    let daemon = Daemon::start(&repo);
    std::fs::write(
        repo.root.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let cache = repo.cache();
    let home = repo.home();
    let server = Server::start(
        repo.root.path(),
        &[
            "--repo",
            &daemon.url(),
            "--ref",
            "main",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--refresh",
            "1s",
            "--fetch-timeout",
            "2s",
            "--secrets-file",
            "secrets.env",
        ],
        &[("HOME", home.to_str().unwrap())],
    );
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
    let ready = server.get("/readyz", &[]).body;
    assert!(
        ready.contains(&format!("serving: 1 playbook at commit {}", &first[..12])),
        "{ready}"
    );

    // A commit that swaps the mappings: served after the refresh, no restart.
    repo.remove("playbooks/sources/datadog.yaml");
    repo.write(
        "playbooks/sources/opsgenie.yaml",
        &repo_file("playbooks/sources/opsgenie.yaml"),
    );
    let second = repo.commit("swap mappings");
    repo.push();
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "serve serves the pushed commit",
        || {
            server
                .get("/readyz", &[])
                .body
                .contains(&second[..12])
                .then_some(())
        },
    );
    assert!(
        server
            .stderr()
            .contains("new hooks: /hooks/opsgenie; removed hooks: /hooks/datadog"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        server.post("/hooks/datadog", &bearer(TOKEN), &dd).status,
        404
    );
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        202
    );

    // A commit whose playbook does not check: neither its mappings nor its
    // commit are served; the failure is counted and warned about once.
    let failures = metric(&server, "irctl_serve_git_refresh_failures_total ")
        .parse::<u64>()
        .unwrap();
    repo.write("playbooks/refreshed.yaml", "version: 1\nname: [broken\n");
    repo.remove("playbooks/sources/opsgenie.yaml");
    let third = repo.commit("broken");
    repo.push();
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "three refreshes of the broken commit counted as failures",
        || {
            metric(&server, "irctl_serve_git_refresh_failures_total ")
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= failures + 3)
        },
    );
    let log = server.stderr();
    assert_eq!(
        log.matches("which is not served").count(),
        1,
        "one warning per failure streak:\n{log}"
    );
    assert!(
        log.contains(&format!("moved to {}, which is not served", &third[..12])),
        "{log}"
    );
    assert!(log.contains("no valid playbook is left"), "{log}");
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200);
    assert!(
        ready.body.contains(&format!("at commit {}", &second[..12])),
        "{}",
        ready.body
    );
    assert!(
        ready.body.contains("last reload: failed at ") && ready.body.contains(&third[..12]),
        "{}",
        ready.body
    );
    assert_eq!(metric(&server, "irctl_serve_reload_failed "), "1");
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        202
    );
    // Runs stay on the last served commit too.
    let run = deliver(&server, "RefreshBroken", 0);
    assert_eq!(run["commit"], second.as_str(), "{run}");

    // Fixed upstream: served again.
    repo.write("playbooks/refreshed.yaml", &playbook("version-four"));
    let fourth = repo.commit("fixed");
    repo.push();
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "serve serves the fixed commit",
        || {
            server
                .get("/readyz", &[])
                .body
                .contains(&fourth[..12])
                .then_some(())
        },
    );
    assert_eq!(
        server.post("/hooks/opsgenie", &bearer(TOKEN), &og).status,
        404
    );
    assert_eq!(metric(&server, "irctl_serve_reload_failed "), "0");
}

#[test]
fn sighup_fetches_the_repository_now() {
    let repo = Repo::new();
    repo.write("playbooks/refreshed.yaml", &playbook("version-one"));
    repo.commit("v1");
    repo.push();
    let daemon = Daemon::start(&repo);
    std::fs::write(
        repo.root.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let cache = repo.cache();
    let home = repo.home();
    let server = Server::start(
        repo.root.path(),
        &[
            "--repo",
            &daemon.url(),
            "--ref",
            "main",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--refresh",
            "1h",
            "--secrets-file",
            "secrets.env",
        ],
        &[("HOME", home.to_str().unwrap())],
    );
    repo.write(
        "playbooks/other.yaml",
        &playbook("version-two").replace("name: refreshed", "name: other"),
    );
    let second = repo.commit("v2");
    repo.push();
    server.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "SIGHUP makes serve fetch and serve the pushed commit",
        || {
            server
                .get("/readyz", &[])
                .body
                .contains(&second[..12])
                .then_some(())
        },
    );
    let log = server.stderr();
    assert!(
        log.contains("SIGHUP: playbooks: fetching the repository now"),
        "{log}"
    );
    assert!(log.contains("serving 2 playbooks"), "{log}");
}
