//! `teams.yaml` through the binary: where it is found, what `validate`
//! says about it and about `notify: { team }` steps, and a run whose step
//! sends one message to every channel of a team (a local receiver stands
//! in for Slack, Teams, PagerDuty and a webhook).

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use common::Test;
use receiver::Receiver;

const TEAMS: &str = "version: 1
secrets: [SLACK_DBA, TEAMS_DBA, PD_DBA, HOOK_DBA]
teams:
  dba:
    channels:
      - slack: SLACK_DBA
      - teams: TEAMS_DBA
      - pagerduty: PD_DBA
        endpoint: PD_ENDPOINT
      - webhook: HOOK_DBA
";

fn playbook(team: &str, secrets: &str) -> String {
    format!(
        "version: 1
name: tell-dba
title: Tell the DBAs
secrets: {secrets}
match: {{ labels: ['alertname=\"DiskFull\"'] }}
steps:
  - id: tell
    notify:
      team: {team}
      title: \"Disk on {{{{ incident.labels.instance }}}}\"
      text: \"Disk full on {{{{ incident.labels.instance }}}}; we are on it\"
"
    )
}

fn validate(files: &[(&str, &str)]) -> common::Output {
    let mut t = Test::new();
    for (path, text) in files {
        t = t.file(path, text);
    }
    t.args(["validate", "--format", "json"]).status(1).run()
}

fn codes(out: &common::Output) -> Vec<String> {
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] != "no-drill")
        .map(|d| {
            format!(
                "{}:{}:{} {} {}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"],
                d["code"].as_str().unwrap(),
                d["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn validate_points_at_values_unknown_teams_and_keywords() {
    let teams = "version: 1
secrets: [SLACK_DBA]
teams:
  group:default/dba:
    channels:
      - slack: https://hooks.slack.com/services/T0/B0/xoxb-s3cr3t
  platform: {}
";
    let out = validate(&[
        ("playbooks/teams.yaml", teams),
        ("playbooks/a.yaml", &playbook("group:default/dab", "[]")),
        (
            "playbooks/b.yaml",
            &playbook("owner", "[]").replace("tell-dba", "tell-owner"),
        ),
    ]);
    let found = codes(&out);
    let text = found.join("\n");
    assert!(!text.contains("xoxb-s3cr3t"), "{text}");
    for want in [
        "playbooks/teams.yaml:6:16 secret-value the `slack` channel of `group:default/dba` holds a URL instead of a secret's name",
        "playbooks/teams.yaml:7:3 no-channel team `group:default/platform` has no channel: nothing could reach it",
        "playbooks/a.yaml:9:13 unknown-team team `group:default/dab`: `playbooks/teams.yaml` has errors",
        "playbooks/b.yaml:9:13 needs-catalog `team: owner` needs the service catalog",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(want)),
            "missing {want:?} in:\n{text}"
        );
    }
}

#[test]
fn a_good_teams_file_is_not_a_playbook_and_team_secrets_are_used() {
    // `SLACK_DBA` is declared by the playbook and used only through the team.
    let teams = TEAMS.replace("PD_ENDPOINT", "https://events.eu.pagerduty.com/v2/enqueue");
    let out = Test::new()
        .file("playbooks/catalog/teams.yaml", &teams)
        .file(
            "playbooks/tell.yaml",
            playbook("group:dba", "[SLACK_DBA, UNUSED_ONE]"),
        )
        .args(["validate", "--format", "json", "--deny-warnings"])
        .status(1)
        .run();
    let found = codes(&out);
    assert_eq!(
        found,
        ["playbooks/tell.yaml:4:22 unused-secret secret `UNUSED_ONE` is declared but never used"],
        "{found:#?}"
    );
    Test::new()
        .file("playbooks/catalog/teams.yaml", &teams)
        .file("playbooks/tell.yaml", playbook("dab", "[]"))
        .args(["validate"])
        .status(1)
        .stderr_contains("team `group:default/dab` is not in `playbooks/catalog/teams.yaml`")
        .stderr_contains("did you mean `group:default/dba`?")
        .run();
    // Two teams files: which one counts would be a guess.
    Test::new()
        .file("playbooks/teams.yaml", &teams)
        .file("playbooks/catalog/teams.yaml", &teams)
        .file("playbooks/tell.yaml", playbook("dba", "[]"))
        .args(["validate"])
        .status(1)
        .stderr_contains("duplicate-teams-file")
        .run();
}

#[test]
fn a_team_step_sends_to_every_channel_escaped_and_redacted() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let secrets = format!(
        "SLACK_DBA={}\nTEAMS_DBA={}\nPD_DBA=pd-routing-K3Y-0123456789\nHOOK_DBA={}\n",
        receiver.url("/slack/slack-s3cr3t-T0KEN"),
        receiver.url("/teams/teams-s3cr3t-T0KEN"),
        receiver.url("/hook/hook-s3cr3t-T0KEN"),
    );
    let incident = serde_json::json!({
        "title": "disk full",
        "labels": {
            "alertname": "DiskFull",
            "instance": "<!channel> [x](http://evil) pd-routing-K3Y-0123456789"
        }
    });
    let out = Test::new()
        .file(
            "playbooks/teams.yaml",
            TEAMS.replace("PD_ENDPOINT", &receiver.url("/pd")),
        )
        .file("playbooks/tell.yaml", playbook("dba", "[]"))
        .file("secrets.env", secrets)
        .file("incident.json", incident.to_string())
        .env("IRCTL_STATE_DIR", "state")
        .args([
            "run",
            "--incident",
            "incident.json",
            "--secrets-file",
            "secrets.env",
        ])
        .run();
    for s in ["s3cr3t-T0KEN", "pd-routing-K3Y"] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "{}{}",
            out.stdout,
            out.stderr
        );
    }
    let requests = receiver.requests();
    let body = |prefix: &str| -> serde_json::Value {
        let r = requests
            .iter()
            .find(|r| r.path.starts_with(prefix))
            .unwrap();
        serde_json::from_str(&r.body).unwrap()
    };
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(
        body("/slack")["text"],
        "Disk full on &lt;!channel&gt; [x](http://evil) ***; we are on it"
    );
    let teams = body("/teams").to_string();
    assert!(
        teams.contains(r"Disk on \\<\\!channel\\> \\[x\\]\\(http://evil\\) ***"),
        "{teams}"
    );
    let pd = body("/pd");
    assert_eq!(pd["routing_key"], "pd-routing-K3Y-0123456789");
    assert_eq!(
        pd["payload"]["summary"],
        "Disk on <!channel> [x](http://evil) ***"
    );
    assert_eq!(pd["payload"]["custom_details"]["team"], "group:default/dba");
    let hook = body("/hook");
    assert_eq!(hook["team"], "group:default/dba");
    assert_eq!(
        hook["text"],
        "Disk full on <!channel> [x](http://evil) ***; we are on it"
    );
    let timeline = std::fs::read_dir(out.tempdir.path().join("state/runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("timeline.jsonl")).unwrap())
        .collect::<String>();
    assert!(
        !timeline.contains("s3cr3t-T0KEN") && !timeline.contains("pd-routing-K3Y"),
        "{timeline}"
    );
    for target in ["slack", "teams", "pagerduty", "webhook"] {
        assert!(
            timeline.contains(&format!("\"target\":\"{target}\"")),
            "{timeline}"
        );
    }
}

#[test]
fn a_team_step_needs_its_channels_secrets_before_anything_runs() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    Test::new()
        .file(
            "playbooks/teams.yaml",
            TEAMS.replace("PD_ENDPOINT", &receiver.url("/pd")),
        )
        .file("playbooks/tell.yaml", playbook("dba", "[]"))
        .file(
            "incident.json",
            r#"{"title":"t","labels":{"alertname":"DiskFull","instance":"db-1"}}"#,
        )
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--incident", "incident.json"])
        .status(2)
        .stderr_contains("missing secrets `SLACK_DBA`, `TEAMS_DBA`, `PD_DBA`, `HOOK_DBA`")
        .run();
    assert!(receiver.requests().is_empty());
}

#[test]
fn the_example_teams_file_checks_cleanly() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/catalog/teams.yaml"
    ))
    .unwrap();
    let out = Test::new()
        .file("playbooks/catalog/teams.yaml", &example)
        .file("playbooks/tell.yaml", playbook("dba", "[]"))
        .args(["validate", "--format", "json"])
        .run();
    assert!(codes(&out).is_empty(), "{:#?}", codes(&out));
}
