//! Declarative payload mappings (`sources/*.yaml`): Datadog and Opsgenie
//! read through the bundled mappings, errors that list what was tried, and
//! `validate` pointing at a bad mapping.

mod common;
#[path = "support/gitserver.rs"]
mod gitserver;
#[path = "support/wait.rs"]
mod wait;

use common::Test;
use gitserver::Repo;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example(name: &str) -> String {
    format!("{ROOT}/examples/incidents/{name}")
}

fn bundled() -> String {
    format!("{ROOT}/playbooks")
}

/// `match --format json` of an example against the bundled playbooks and mappings.
fn matched(file: &str) -> serde_json::Value {
    let out = Test::new()
        .args([
            "match",
            "--playbooks",
            &bundled(),
            "--incident",
            &example(file),
        ])
        .args(["--format", "json"])
        .status(1)
        .run();
    out.json()
}

#[test]
fn a_datadog_webhook_is_read_through_the_bundled_mapping() {
    let doc = matched("datadog-webhook.json");
    let incident = &doc["incident"];
    assert_eq!(incident["source"], "datadog");
    assert_eq!(incident["id"], "98765432");
    assert_eq!(incident["title"], "High CPU on checkout hosts");
    assert_eq!(incident["severity"], "high");
    assert_eq!(incident["status"], "firing");
    let labels = &incident["labels"];
    assert_eq!(labels["service"], "checkout");
    assert_eq!(labels["env"], "prod");
    assert_eq!(labels["availability_zone"], "eu-west-1a");
    assert_eq!(labels["monitor"], "true");
    assert_eq!(labels["alertname"], "High CPU on checkout hosts");
    assert_eq!(labels["host"], "web-01");
}

#[test]
fn an_opsgenie_alert_action_is_read_through_the_bundled_mapping() {
    let doc = matched("opsgenie-create.json");
    let incident = &doc["incident"];
    assert_eq!(incident["source"], "opsgenie");
    assert_eq!(incident["id"], "052652ac-5d1c-464a-812a-7dd18bbfba8c");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["status"], "firing");
    assert_eq!(incident["labels"]["service"], "payments");
    assert_eq!(incident["labels"]["entity"], "db-1");
    assert_eq!(incident["labels"]["database"], "true");

    // Closing the alert is a resolution.
    let payload = std::fs::read_to_string(example("opsgenie-create.json"))
        .unwrap()
        .replace("\"action\": \"Create\"", "\"action\": \"Close\"");
    let out = Test::new()
        .file("close.json", payload)
        .args([
            "match",
            "--playbooks",
            &bundled(),
            "--incident",
            "close.json",
        ])
        .args(["--format", "json"])
        .status(1)
        .run();
    assert_eq!(out.json()["incident"]["status"], "resolved");
}

#[test]
fn an_opsgenie_acknowledgement_is_recorded_and_starts_no_remediation() {
    let mapping =
        std::fs::read_to_string(format!("{ROOT}/playbooks/sources/opsgenie.yaml")).unwrap();
    let payload = std::fs::read_to_string(example("opsgenie-create.json"))
        .unwrap()
        .replace("\"action\": \"Create\"", "\"action\": \"Acknowledge\"");
    assert!(payload.contains("Acknowledge"));
    let out = Test::new()
        .file("playbooks/sources/opsgenie.yaml", mapping)
        .playbook(
            "p.yaml",
            "version: 1\nname: p\ntitle: P\nmatch:\n  labels: ['service=\"payments\"']\nsteps:\n  - id: fix\n    shell: touch remediated\n",
        )
        .file("ack.json", payload)
        .args(["run", "--state-dir", "state", "--incident", "ack.json"])
        .stderr_contains("acknowledged")
        .run();
    assert!(
        !out.tempdir.path().join("remediated").exists(),
        "an acknowledgement ran the remediation: {}",
        out.stderr
    );
    assert!(
        !out.tempdir.path().join("state/runs").exists()
            || std::fs::read_dir(out.tempdir.path().join("state/runs"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn without_a_mapping_the_error_lists_every_format_tried() {
    // A playbook folder without `sources/`: nothing knows Datadog.
    let out = Test::new()
        .playbook(
            "p.yaml",
            "version: 1\nname: p\ntitle: P\nsteps:\n  - id: a\n    shell: \"true\"\n",
        )
        .args(["match", "--incident", &example("datadog-webhook.json")])
        .status(2)
        .run();
    let err = &out.stderr;
    assert!(
        err.starts_with("error: could not recognise the incident format of `"),
        "{err}"
    );
    for tried in [
        "  - alertmanager, grafana: no `alerts` field\n",
        "  - pagerduty-event: no `event_action` field\n",
        "  - cloudevents: no `specversion` field\n",
        "  - irctl at line 2 column ",
        ": unknown field `body`, expected one of `id`, `title`,",
    ] {
        assert!(err.contains(tried), "{tried}\n{err}");
    }
    assert!(!err.starts_with("error: invalid irctl payload"), "{err}");

    // With the bundled mappings, a payload neither knows names both.
    let out = Test::new()
        .file("x.json", r#"{"hello": "world"}"#)
        .args(["match", "--playbooks", &bundled(), "--incident", "x.json"])
        .status(2)
        .run();
    for tried in [
        "  - datadog (`",
        "sources/datadog.yaml`): `/last_updated` does not exist\n",
        "sources/opsgenie.yaml`): `/action` does not exist\n",
        "  - irctl: no `title` or `labels` field",
    ] {
        assert!(out.stderr.contains(tried), "{tried}\n{}", out.stderr);
    }
}

#[test]
fn a_mapping_can_be_forced_by_name() {
    let out = Test::new()
        .args(["match", "--playbooks", &bundled()])
        .args(["--incident", &example("datadog-webhook.json")])
        .args(["--incident-format", "opsgenie"])
        .status(2)
        .run();
    assert!(
        out.stderr
            .contains("does not match incident format `opsgenie` (`")
            && out.stderr.ends_with("`/action` does not exist\n"),
        "{}",
        out.stderr
    );
    let out = Test::new()
        .args(["match", "--playbooks", &bundled()])
        .args(["--incident", &example("datadog-webhook.json")])
        .args(["--incident-format", "nagios"])
        .status(2)
        .run();
    assert!(
        out.stderr
            .contains("supported: alertmanager, grafana, pagerduty-webhook, pagerduty-event, cloudevents, irctl, datadog, opsgenie"),
        "{}",
        out.stderr
    );
}

const PLAYBOOK: &str = "version: 1\nname: p\ntitle: P\nmatch:\n  labels: ['service=\"checkout\"']\ndrill:\n  incident: { title: d, labels: { service: checkout } }\nsteps:\n  - id: a\n    shell: \"true\"\n";

#[test]
fn validate_points_at_a_bad_mapping_expression_and_the_loader_skips_mappings() {
    let bad = "version: 1\nname: acme\ndetect:\n  - { pointer: /acme }\ntitle: payload.title +\n";
    let out = Test::new()
        .playbook("p.yaml", PLAYBOOK)
        .playbook("sources/acme.yaml", bad)
        .args(["validate"])
        .status(1)
        .run();
    assert!(
        out.stderr.contains("invalid expression `payload.title +`")
            && out.stderr.contains("playbooks/sources/acme.yaml:5:8"),
        "{}",
        out.stderr
    );
    // The mapping is not taken for a playbook (no "missing field `steps`").
    assert!(!out.stderr.contains("steps"), "{}", out.stderr);

    // `run` and `match` skip a broken mapping with a warning, like a broken playbook.
    Test::new()
        .playbook("p.yaml", PLAYBOOK)
        .playbook("sources/acme.yaml", bad)
        .args(["match", "--label", "service=checkout"])
        .stderr_contains("sources/acme.yaml")
        .run();

    // The bundled mappings are valid.
    Test::new()
        .args(["validate", &bundled()])
        .stderr_contains("valid")
        .run();
}

#[test]
fn mapping_values_are_data_and_a_mapping_cannot_reach_outside_the_payload() {
    let mapping = r#"version: 1
name: acme
detect:
  - { pointer: /acme, equals: "yes" }
title: payload.title
labels_from: payload.labels
labels:
  service: payload.service
"#;
    let payload = r#"{"acme": "yes", "title": "{{ 7 * 7 }} $(touch pwned)", "service": "checkout", "labels": {"x": "{% include '/etc/passwd' %}"}}"#;
    let out = Test::new()
        .playbook("p.yaml", PLAYBOOK)
        .playbook("sources/acme.yaml", mapping)
        .file("acme.json", payload)
        .args(["match", "--incident", "acme.json", "--format", "json"])
        .run();
    let doc = out.json();
    assert_eq!(doc["selected"], "p");
    assert_eq!(doc["incident"]["source"], "acme");
    assert_eq!(doc["incident"]["title"], "{{ 7 * 7 }} $(touch pwned)");
    assert_eq!(
        doc["incident"]["labels"]["x"],
        "{% include '/etc/passwd' %}"
    );
    assert!(!out.tempdir.path().join("pwned").exists());

    // An expression that tries to read a file has no way to: `include` is
    // not an expression, and no function reaches the filesystem.
    let reader = mapping.replace(
        "title: payload.title",
        "title: \"include('/etc/hostname')\"",
    );
    let out = Test::new()
        .playbook("p.yaml", PLAYBOOK)
        .playbook("sources/acme.yaml", &reader)
        .file("acme.json", payload)
        .args(["match", "--incident", "acme.json"])
        .status(2)
        .run();
    assert!(
        out.stderr.contains("(format `acme`") && out.stderr.contains("`title`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_mapping_producing_too_many_labels_is_refused_by_name() {
    let mapping = "version: 1\nname: acme\ndetect:\n  - { pointer: /acme }\ntitle: '\"t\"'\nlabels_from: payload.tags | tags\n";
    let tags: Vec<String> = (0..300).map(|i| format!("k{i}:v")).collect();
    let payload = serde_json::json!({"acme": 1, "tags": tags.join(",")}).to_string();
    Test::new()
        .playbook("p.yaml", PLAYBOOK)
        .playbook("sources/acme.yaml", mapping)
        .file("acme.json", payload)
        .args(["match", "--incident", "acme.json"])
        .status(2)
        .stderr_contains("`labels_from` gave 300 entries, more than the limit of 256")
        .run();
}

#[test]
fn mappings_come_from_a_git_source_too_and_are_not_playbooks_there() {
    let repo = Repo::new();
    repo.write("playbooks/p.yaml", PLAYBOOK);
    repo.write(
        "playbooks/sources/datadog.yaml",
        &std::fs::read_to_string(format!("{ROOT}/playbooks/sources/datadog.yaml")).unwrap(),
    );
    repo.commit("playbooks and a mapping");
    repo.push();
    let home = repo.home();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let out = Test::new()
        .env("HOME", &s(&home))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "match",
            "--repo",
            &repo.file_url(),
            "--repo-path",
            "playbooks",
        ])
        .args([
            "--incident",
            &example("datadog-webhook.json"),
            "--format",
            "json",
        ])
        .arg("--cache-dir")
        .arg(repo.cache())
        .run();
    let doc = out.json();
    assert_eq!(doc["incident"]["source"], "datadog");
    assert_eq!(doc["selected"], "p");
    assert!(!out.stderr.contains("skipped"), "{}", out.stderr);
}
