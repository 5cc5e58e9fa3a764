//! Untrusted data in `http` steps and `cwd`, through the real binary: a
//! URL's host cannot come from an alert unless the playbook allows it, a
//! label cannot climb a URL path, add JSON keys to a text body or move a
//! step out of its working directory, and no secret header follows a
//! redirect to another host.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use std::path::Path;

use common::{Test, timeline_events, unindent};
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
    let ev = timeline_events(out.tempdir.path());
    let error = finished(&ev, "call")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("too many redirects"), "{error}");
}

/// Runs `yaml` on an incident with label `x` and annotation `runbook_url`.
fn run_incident(yaml: &str, label: &str, runbook_url: &str) -> Test {
    let incident = serde_json::json!({
        "title": "hostile",
        "labels": {"app": "t", "x": label},
        "annotations": {"runbook_url": runbook_url},
    });
    Test::new()
        .playbook("t.yaml", yaml)
        .file("incident.json", incident.to_string())
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_SECRET_API_TOKEN", SECRET)
        .args(["run", "--incident", "incident.json"])
}

/// `(severity, code, line, column)` of every finding `validate` reports
/// but `no-drill`.
fn validate(yaml: &str, status: i32) -> Vec<(String, String, u64, u64)> {
    let out = Test::new()
        .playbook("p.yaml", yaml)
        .args(["validate", "--format", "json"])
        .status(status)
        .run();
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] != "no-drill")
        .map(|d| {
            (
                d["severity"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn finding(severity: &str, code: &str, line: u64, column: u64) -> (String, String, u64, u64) {
    (severity.into(), code.into(), line, column)
}

#[test]
fn a_url_whose_host_comes_from_the_alert_is_refused_at_load() {
    // Lines 1-4 are the header; `secrets` is line 5.
    let yaml = playbook(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: whole
            http:
              url: "{{ incident.annotations.runbook_url }}"
              headers: { authorization: "Bearer {{ secrets.API_TOKEN }}" }
          - id: host
            http: { url: "https://{{ incident.labels.x }}.example/api" }
          - id: path
            http: { url: "https://api.example/{{ incident.labels.x }}" }
          - id: hook
            notify: { webhook: { url: "{{ incident.annotations.runbook_url }}" } }
        "#,
    );
    assert_eq!(
        validate(&yaml, 1),
        [
            finding("error", "untrusted-url-host", 10, 12),
            finding("error", "untrusted-url-host", 13, 18),
            finding("error", "untrusted-url-host", 17, 31),
        ]
    );
    let thief = Receiver::start(vec![(200, vec![], "ok")]);
    run_incident(&yaml, "x", &thief.url("/steal"))
        .status(2)
        .stderr_contains("no valid playbooks")
        .run();
    assert!(
        thief.requests().is_empty(),
        "a refused playbook sent a request"
    );

    let bad = playbook(
        r#"
        allowed_hosts: ["https://x.example", "x.example:http"]
        steps:
          - id: s
            http: { url: "{{ incident.annotations.runbook_url }}", allowed_hosts: ["a.*.example"] }
        "#,
    );
    let found = validate(&bad, 1);
    assert_eq!(
        found.iter().filter(|f| f.1 == "allowed-hosts").count(),
        3,
        "{found:?}"
    );
}

#[test]
fn allowed_hosts_bound_where_a_templated_url_may_go() {
    let runbooks = Receiver::start(vec![(200, vec![], "ok")]);
    let thief = Receiver::start(vec![(200, vec![], "ok")]);
    let yaml = playbook(&format!(
        r#"
        secrets: [API_TOKEN]
        allowed_hosts: ["{allowed}"]
        steps:
          - id: fetch
            http:
              url: "{{{{ incident.annotations.runbook_url }}}}"
              headers: {{ x-api-key: "{{{{ secrets.API_TOKEN }}}}" }}
        "#,
        allowed = runbooks.addr
    ));
    Test::new()
        .playbook("p.yaml", &yaml)
        .args(["validate"])
        .run();
    run_incident(&yaml, "x", &runbooks.url("/page")).run();
    assert_eq!(runbooks.requests()[0].headers["x-api-key"], SECRET);

    // Same host, another port: not allowed, and nothing is sent.
    let out = run_incident(&yaml, "x", &thief.url("/steal"))
        .status(1)
        .stdout_contains("is not in `allowed_hosts`")
        .run();
    assert!(
        thief.requests().is_empty(),
        "the secret left for {}",
        thief.addr
    );
    let ev = timeline_events(out.tempdir.path());
    assert_eq!(finished(&ev, "fetch")["status"], "failed");

    // A step's own list works the same way.
    let step_level = playbook(&format!(
        r#"
        steps:
          - id: fetch
            http:
              url: "http://{{{{ incident.labels.x }}}}:{port}/page"
              allowed_hosts: ["{allowed}"]
        "#,
        allowed = runbooks.addr,
        port = thief.addr.port(),
    ));
    run_incident(&step_level, "127.0.0.1", "")
        .status(1)
        .stdout_contains("is not in `allowed_hosts`")
        .run();
    assert!(thief.requests().is_empty());
}

#[test]
fn a_label_cannot_climb_the_url_path() {
    let recv = Receiver::start(vec![(200, vec![], "ok")]);
    let yaml = playbook(&format!(
        r#"
        steps:
          - id: call
            http: {{ url: "{url}/api/v1/services/{{{{ incident.labels.x }}}}/status" }}
        "#,
        url = recv.url("")
    ));
    for dots in ["..", "."] {
        run_incident(&yaml, dots, "")
            .status(1)
            .stdout_contains("would climb the path")
            .run();
    }
    assert!(recv.requests().is_empty(), "{:?}", recv.requests());
    run_incident(&yaml, "..db", "").run();
    assert_eq!(recv.requests()[0].path, "/api/v1/services/..db/status");
}

#[test]
fn a_text_body_sent_as_json_keeps_labels_inside_their_strings() {
    let recv = Receiver::start(vec![(200, vec![], "ok")]);
    let hostile = r#"db", "admin": true, "x": "\"#;
    for (headers, body) in [
        (
            "{ content-type: application/json }",
            r#"'{"service": "{{ incident.labels.x }}", "admin": false}'"#,
        ),
        (
            "{}",
            r#"'{"service": "{{ incident.labels.x }}", "admin": false}'"#,
        ),
    ] {
        let yaml = playbook(&format!(
            r#"
            steps:
              - id: call
                http: {{ method: POST, url: "{url}", headers: {headers}, body: {body} }}
            "#,
            url = recv.url("/hook")
        ));
        run_incident(&yaml, hostile, "").run();
        let sent = recv.requests().last().cloned().expect("one request");
        let json: serde_json::Value = serde_json::from_str(&sent.body).expect("valid JSON");
        assert_eq!(json["service"], hostile, "{}", sent.body);
        assert_eq!(json["admin"], false, "{}", sent.body);
        assert_eq!(json.as_object().map(|o| o.len()), Some(2), "{}", sent.body);
        let codes: Vec<String> = validate(&yaml, 0).into_iter().map(|f| f.1).collect();
        assert_eq!(codes, ["json-text-body"], "{headers}");
    }
    // Plain text is sent as written.
    let yaml = playbook(&format!(
        r#"
        steps:
          - id: call
            http: {{ method: POST, url: "{url}", body: 'say "{{{{ incident.labels.x }}}}"' }}
        "#,
        url = recv.url("/text")
    ));
    run_incident(&yaml, hostile, "").run();
    assert_eq!(
        recv.requests().last().unwrap().body,
        format!("say \"{hostile}\"")
    );
}

#[test]
fn a_templated_cwd_stays_under_its_literal_prefix() {
    let yaml = playbook(
        r#"
        steps:
          - id: s
            cwd: "svc/{{ incident.labels.x }}"
            shell: ./run.sh
        "#,
    );
    let setup = |t: Test| {
        t.file("svc/api/run.sh", "#!/bin/sh\necho api\n")
            .file("evil/run.sh", "#!/bin/sh\ntouch PWNED\n")
    };
    let mark = |dir: &Path| dir.join("evil/PWNED").exists() || dir.join("PWNED").exists();
    for evil in ["../evil", "api/../../evil", ".."] {
        let out = setup(run_incident(&yaml, evil, ""))
            .status(1)
            .stdout_contains("leaves `svc/`")
            .run();
        assert!(
            !mark(out.tempdir.path()),
            "{evil} ran another directory's script"
        );
    }
    let found = validate(&yaml, 0);
    assert_eq!(found, [finding("warning", "untrusted-cwd", 8, 10)]);
}
