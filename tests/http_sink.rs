//! Untrusted data in `http` steps and `cwd`, through the real binary: a
//! URL's host cannot come from an alert unless the playbook allows it, a
//! label cannot climb a URL path, add JSON keys to a text body or move a
//! step out of its working directory, and no secret header follows a
//! redirect to another host.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use std::path::Path;

use common::{Test, unindent};
use receiver::Receiver;

const SECRET: &str = "s3cr3t-v4lue";

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(steps)
    )
}

fn run_test(yaml: &str) -> Test {
    Test::new()
        .playbook("t.yaml", yaml)
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_SECRET_API_TOKEN", SECRET)
        .args(["run", "--label", "app=t"])
}

/// The events of the only run under `state`.
fn events(dir: &Path) -> Vec<serde_json::Value> {
    let run = std::fs::read_dir(dir.join("state/runs"))
        .expect("state dir")
        .next()
        .expect("one run")
        .expect("readable")
        .path();
    std::fs::read_to_string(run.join("timeline.jsonl"))
        .expect("timeline")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

fn finished<'a>(events: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    events
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}"))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn a_redirect_to_another_host_drops_every_header_that_carries_a_secret() {
    let other = Receiver::start(vec![(200, vec![], "ok")]);
    let location = leak(other.url("/landed"));
    for status in [302, 307] {
        let first = Receiver::start(vec![(status, vec![("location", location)], "")]);
        let yaml = playbook(&format!(
            r#"
            secrets: [API_TOKEN]
            steps:
              - id: call
                http:
                  method: POST
                  url: "{url}"
                  headers:
                    x-api-key: "{{{{ secrets.API_TOKEN }}}}"
                    x-signed: "key={{{{ secrets.API_TOKEN }}}}"
                    authorization: "Bearer {{{{ secrets.API_TOKEN }}}}"
                    x-trace: "plain"
                  body: hello
            "#,
            url = first.url("/start")
        ));
        run_test(&yaml).run();
        let sent = first.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].headers["x-api-key"], SECRET,
            "the written host gets it"
        );
        let landed = other.requests();
        let last = landed.last().expect("the redirect was followed");
        assert_eq!(last.path, "/landed");
        for name in ["x-api-key", "x-signed", "authorization"] {
            assert!(
                !last.headers.contains_key(name),
                "{name} reached the other host after a {status}: {:?}",
                last.headers
            );
        }
        assert_eq!(
            last.headers["x-trace"], "plain",
            "other headers still follow"
        );
        let want_body = if status == 307 { "hello" } else { "" };
        assert_eq!(
            last.body, want_body,
            "a {status} keeps the body only when it must"
        );
    }
}

#[test]
fn a_redirect_on_the_same_host_keeps_the_headers_and_the_limit_holds() {
    let recv = Receiver::start(vec![
        (301, vec![("location", "/next")], ""),
        (200, vec![], "ok"),
    ]);
    let yaml = playbook(&format!(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: call
            http:
              url: "{url}"
              headers: {{ x-api-key: "{{{{ secrets.API_TOKEN }}}}" }}
        "#,
        url = recv.url("/start")
    ));
    run_test(&yaml).run();
    let sent = recv.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].path, "/next");
    assert_eq!(sent[1].headers["x-api-key"], SECRET);

    let looping = Receiver::start(vec![(302, vec![("location", "/again")], "")]);
    let yaml = playbook(&format!(
        r#"
        steps:
          - id: call
            http: {{ url: "{url}", max_redirects: 2 }}
        "#,
        url = looping.url("/start")
    ));
    let out = run_test(&yaml).status(1).run();
    assert_eq!(looping.requests().len(), 3);
    let ev = events(out.tempdir.path());
    let error = finished(&ev, "call")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("too many redirects"), "{error}");
}
