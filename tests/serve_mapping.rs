//! `irctl serve` with the playbook source's payload mappings: the bundled
//! Datadog and Opsgenie examples posted to `/hooks/datadog` and
//! `/hooks/opsgenie` become runs, only loaded mappings have an endpoint
//! (hostile names are 404 and never reach the metrics), the generic HMAC
//! header authenticates them, and `/metrics` shows what the runs did:
//! runs by playbook, repeats and throttles by reason, step durations and
//! skips by reason.

#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serve::{Server, bearer, deliveries, runs};
use sha2::Sha256;
use wait::wait_until;

const TOKEN: &str = "t0ken-alpha-0001";
const HOOK_KEY: &str = "hook-hmac-secret-1";
const HOOK_KEY_OLD: &str = "hook-hmac-secret-0";

const DD_PLAYBOOK: &str = r#"version: 1
name: dd-cpu
title: High CPU
auto: true
match:
  labels: ['alertname="High CPU on checkout hosts"']
steps:
  - id: look
    shell: "true"
  - id: never
    when: "false"
    shell: "true"
  - id: rescue
    needs: [look]
    trigger: on_failure
    shell: "true"
"#;

const OG_PLAYBOOK: &str = r#"version: 1
name: og-pg
title: Postgres connections
auto: true
once_within: 1h
match:
  labels: ['entity="db-1"']
steps:
  - id: look
    shell: "true"
"#;

fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn example(name: &str) -> serde_json::Value {
    serde_json::from_slice(&repo_file(&format!("examples/incidents/{name}"))).unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("irctl-serve-mapping")
        .tempdir()
        .unwrap();
    let sources = dir.path().join("playbooks/sources");
    std::fs::create_dir_all(&sources).unwrap();
    for m in ["datadog.yaml", "opsgenie.yaml"] {
        std::fs::write(
            sources.join(m),
            repo_file(&format!("playbooks/sources/{m}")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("playbooks/dd-cpu.yaml"), DD_PLAYBOOK).unwrap();
    std::fs::write(dir.path().join("playbooks/og-pg.yaml"), OG_PLAYBOOK).unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        format!(
            "SERVE_BEARER_TOKEN={TOKEN}\nSERVE_HOOK_HMAC_SECRET={HOOK_KEY}\nSERVE_HOOK_HMAC_SECRET_2={HOOK_KEY_OLD}\n"
        ),
    )
    .unwrap();
    dir
}

fn signed(key: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    vec![(
        "X-Hook-Sig",
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )]
}

fn wait_done(server: &Server, n: usize) {
    wait_until(
        Instant::now() + Duration::from_secs(90),
        Duration::from_millis(100),
        &format!("{n} deliveries not all done:\n{}", server.stderr()),
        || {
            let d = deliveries(server, TOKEN);
            (d.len() == n && d.iter().all(|x| x["state"] == "done")).then_some(())
        },
    );
}

#[test]
fn datadog_and_opsgenie_payloads_run_through_their_mapping_hooks() {
    let dir = setup();
    let server = Server::start(
        dir.path(),
        &[
            "--playbooks",
            "playbooks",
            "--secrets-file",
            "secrets.env",
            "--hook-signature-header",
            "X-Hook-Sig",
        ],
        &[],
    );
    assert!(
        server
            .stderr()
            .contains("/hooks/datadog reads payloads with mapping `datadog`"),
        "{}",
        server.stderr()
    );
    let dd = serde_json::to_vec(&example("datadog-webhook.json")).unwrap();
    let og = serde_json::to_vec(&example("opsgenie-create.json")).unwrap();

    // Authentication before anything: none, a wrong signature, a signature
    // in a header that is not the configured one.
    let r = server.post("/hooks/opsgenie", &[], &og);
    assert_eq!(r.status, 401, "{}", r.body);
    let mut wrong = signed(HOOK_KEY, b"something else");
    assert_eq!(server.post("/hooks/opsgenie", &wrong, &og).status, 403);
    wrong = signed(HOOK_KEY, &og);
    wrong[0].0 = "X-Irctl-Signature";
    assert_eq!(server.post("/hooks/opsgenie", &wrong, &og).status, 401);

    let r = server.post("/hooks/datadog", &bearer(TOKEN), &dd);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "accepted");
    let r = server.post("/hooks/datadog", &bearer(TOKEN), &dd);
    assert_eq!(r.json()["status"], "duplicate", "{}", r.body);
    // The rotated-out key still signs.
    let r = server.post("/hooks/opsgenie", &signed(HOOK_KEY_OLD, &og), &og);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "accepted");

    // A payload the mapping does not recognise is malformed, named as such.
    let r = server.post("/hooks/datadog", &bearer(TOKEN), &og);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("datadog"), "{}", r.body);

    // Only the names of loaded mappings have an endpoint; nothing is a path.
    for hostile in [
        "/hooks/nope",
        "/hooks/DATADOG",
        "/hooks/datadog.yaml",
        "/hooks/sources%2Fdatadog",
        "/hooks/..%2F..%2Fsecrets.env",
        "/hooks/%2e%2e",
        "/hooks/x%22%7D%0Aevil",
    ] {
        let r = server.post(hostile, &bearer(TOKEN), &dd);
        assert_eq!(r.status, 404, "{hostile}: {}", r.body);
    }

    wait_done(&server, 2);
    let ran = runs(&server, TOKEN);
    let mut playbooks: Vec<&str> = ran.iter().filter_map(|r| r["playbook"].as_str()).collect();
    playbooks.sort_unstable();
    assert_eq!(playbooks, ["dd-cpu", "og-pg"], "{ran:?}");

    // The same Datadog incident again (a later update): a repeat. Another
    // Opsgenie alert on the same entity within the hour: throttled.
    let mut dd2 = example("datadog-webhook.json");
    dd2["last_updated"] = "1715705999000".into();
    let dd2 = serde_json::to_vec(&dd2).unwrap();
    assert_eq!(
        server.post("/hooks/datadog", &bearer(TOKEN), &dd2).status,
        202
    );
    let mut og2 = example("opsgenie-create.json");
    og2["alert"]["alertId"] = "b3f3c1de-0000-4000-8000-000000000002".into();
    let og2 = serde_json::to_vec(&og2).unwrap();
    assert_eq!(
        server
            .post("/hooks/opsgenie", &signed(HOOK_KEY, &og2), &og2)
            .status,
        202
    );
    wait_done(&server, 4);
    // Still two runs; the throttled Opsgenie alert is listed as held.
    let listed = runs(&server, TOKEN);
    let (held, ran): (Vec<_>, Vec<_>) = listed.iter().partition(|r| r["status"] == "held");
    assert_eq!(ran.len(), 2, "{listed:?}");
    assert_eq!(held.len(), 1, "{listed:?}");
    assert_eq!(held[0]["playbook"], "og-pg");
    assert_eq!(held[0]["held"]["reason"], "once_within");

    let metrics = server.get("/metrics", &[]).body;
    for want in [
        "irctl_serve_deliveries_total{source=\"mapping:datadog\",outcome=\"accepted\"} 2",
        "irctl_serve_deliveries_total{source=\"mapping:datadog\",outcome=\"duplicate\"} 1",
        "irctl_serve_deliveries_total{source=\"mapping:datadog\",outcome=\"malformed\"} 1",
        "irctl_serve_deliveries_total{source=\"mapping:opsgenie\",outcome=\"accepted\"} 2",
        "irctl_serve_deliveries_total{source=\"mapping:opsgenie\",outcome=\"unauthorized\"} 2",
        "irctl_serve_deliveries_total{source=\"mapping:opsgenie\",outcome=\"forbidden\"} 1",
        "irctl_serve_runs_total{playbook=\"dd-cpu\",status=\"succeeded\"} 1",
        "irctl_serve_runs_total{playbook=\"og-pg\",status=\"succeeded\"} 1",
        "irctl_serve_runs_held_total{playbook=\"dd-cpu\",reason=\"repeat\"} 1",
        "irctl_serve_runs_held_total{playbook=\"og-pg\",reason=\"once_within\"} 1",
        "irctl_serve_step_duration_seconds_count{playbook=\"dd-cpu\",kind=\"shell\",status=\"succeeded\"} 1",
        "irctl_serve_step_duration_seconds_bucket{playbook=\"og-pg\",kind=\"shell\",status=\"succeeded\",le=\"+Inf\"} 1",
        "irctl_serve_steps_skipped_total{playbook=\"dd-cpu\",reason=\"when_false\"} 1",
        "irctl_serve_steps_skipped_total{playbook=\"dd-cpu\",reason=\"nothing_failed\"} 1",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
    for absent in ["nope", "evil", "secrets", "DATADOG"] {
        assert!(!metrics.contains(absent), "`{absent}` in\n{metrics}");
    }
}
