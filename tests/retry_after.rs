//! A server's `Retry-After` is a hint inside the playbook's bounds: an HTTP
//! step retried after `503` + `Retry-After: 3600` waits no longer than its
//! `max_backoff`, nor longer than its `timeout`, and the retries are recorded.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use common::{Test, timeline_events, unindent};
use receiver::Receiver;

fn run_against(api: &Receiver, retry: &str, timeout: &str) -> Vec<serde_json::Value> {
    let yaml = format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(&format!(
            r#"
            steps:
              - id: api
                http: {{ url: "{url}" }}
                timeout: {timeout}
                retry: {retry}
            "#,
            url = api.url("/api"),
        ))
    );
    let out = Test::new()
        .playbook("t.yaml", &yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(1)
        .run();
    timeline_events(out.tempdir.path())
}

fn delays(events: &[serde_json::Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "step_retrying")
        .map(|e| {
            assert_eq!(e["http_status"], 503, "{e}");
            e["delay_ms"].as_u64().expect("delay_ms")
        })
        .collect()
}

#[test]
fn retry_after_never_exceeds_max_backoff() {
    let api = Receiver::start(vec![(503, vec![("retry-after", "3600")], "busy")]);
    let events = run_against(
        &api,
        "{ attempts: 3, backoff: 100ms, max_backoff: 1s }",
        "30s",
    );
    let delays = delays(&events);
    assert_eq!(delays.len(), 2, "{events:?}");
    // The hint is longer than any backoff, so it wins up to the bound.
    assert!(delays.iter().all(|&d| d == 1000), "{delays:?}");
    assert_eq!(api.requests().len(), 3);
    let finished = events
        .iter()
        .find(|e| e["type"] == "step_finished")
        .expect("step_finished");
    assert_eq!(finished["attempts"], 3);
    assert_eq!(finished["status"], "failed");
}

#[test]
fn retry_after_never_exceeds_the_step_timeout() {
    let api = Receiver::start(vec![(503, vec![("retry-after", "3600")], "busy")]);
    let events = run_against(
        &api,
        "{ attempts: 2, backoff: 100ms, max_backoff: 10m }",
        "1s",
    );
    assert_eq!(delays(&events), [1000]);
    assert_eq!(api.requests().len(), 2);
}
