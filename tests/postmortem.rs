//! `irctl postmortem`: the built-in draft (snapshot), key times and
//! durations from known times and which clock gave each, the sections
//! (responders, communications, findings, per-alert detail), `--template`,
//! `-o`, and playbook history from a real Git repository.

mod common;
#[path = "support/state.rs"]
mod state;

use common::unindent;
use state::{INCIDENT, State, alertmanager, filters};

const PLAYBOOK: &str = r#"
    version: 1
    name: api-down
    title: API down
    owner: team-api
    match:
      labels: ['alertname="ApiDown"']
    steps:
      - id: check
        shell: echo checking
        report: true
      - id: tell
        needs: [check]
        notify: { console: { text: "looking into it" } }
      - id: restart
        needs: [tell]
        shell: echo restarting; exit 1
      - id: page
        needs: [restart]
        shell: echo paging
    "#;

/// The incident of the snapshot: detected 2 minutes after it started, a
/// failed run, notes by two people, mitigated at 10:20, resolved at 10:30.
fn incident_with_history() -> State {
    let state = State::new();
    state
        .irctl()
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args([
            "ingest",
            "--incident",
            "firing.json",
            "--at",
            "2000-01-01T10:02:00Z",
        ])
        .run();
    state
        .irctl()
        .playbook("api.yaml", &unindent(PLAYBOOK))
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args(["run", "--incident", "firing.json"])
        .status(1)
        .run();
    state
        .irctl()
        .args(["note", "--incident", INCIDENT, "--author", "bob"])
        .args([
            "--at",
            "2000-01-01T10:05:00Z",
            "restart failed | rolled back by hand",
        ])
        .run();
    state
        .irctl()
        .args(["note", "--incident", INCIDENT, "--mitigated"])
        .args(["--at", "2000-01-01T10:20:00Z", "error rate back to normal"])
        .run();
    state
        .irctl()
        .args([
            "resolve",
            "--incident",
            INCIDENT,
            "--at",
            "2000-01-01T10:30:00Z",
        ])
        .args(["--summary", "rolled back release 42"])
        .run();
    state
}

#[test]
fn postmortem_draft_has_key_times_durations_timeline_and_steps() {
    let state = incident_with_history();
    let out = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT])
        .run();
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("postmortem_markdown", out.stdout);
    });
}

#[test]
fn durations_come_from_the_recorded_times() {
    let state = incident_with_history();
    let pm = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT, "--format", "json"])
        .run()
        .json();
    assert_eq!(pm["times"]["started"], "2000-01-01T10:00:00Z");
    assert_eq!(pm["times"]["detected"], "2000-01-01T10:02:00Z");
    assert_eq!(pm["times"]["first_note"], "2000-01-01T10:05:00Z");
    assert_eq!(pm["times"]["mitigated"], "2000-01-01T10:20:00Z");
    assert_eq!(pm["times"]["resolved"], "2000-01-01T10:30:00Z");
    assert_eq!(pm["durations"]["time_to_detect"]["seconds"], 120);
    assert_eq!(pm["durations"]["time_to_detect"]["text"], "2m00s");
    assert_eq!(pm["durations"]["time_to_resolve"]["seconds"], 1800);
    // Acknowledged: the first human action, bob's note (the run came later).
    assert_eq!(pm["times"]["acknowledged"], "2000-01-01T10:05:00Z");
    assert_eq!(pm["durations"]["time_to_acknowledge"]["seconds"], 180);
    assert_eq!(pm["durations"]["time_to_mitigate"]["seconds"], 1200);
    // Each time says which clock gave it.
    assert_eq!(pm["time_sources"]["started"], "from Alertmanager startsAt");
    assert_eq!(pm["time_sources"]["detected"], "stated by alice (--at)");
    assert_eq!(pm["time_sources"]["acknowledged"], "stated by bob (--at)");
    assert_eq!(pm["time_sources"]["first_action"], "irctl's clock");
    assert_eq!(pm["time_warnings"], serde_json::json!([]));
    assert_eq!(pm["incident"]["status"], "resolved");
    // Who did what, from the record.
    let responders: Vec<(String, Vec<String>)> = pm["responders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let roles = r["roles"].as_array().unwrap();
            (
                r["name"].as_str().unwrap().to_string(),
                roles
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        responders,
        [
            (
                "alice".to_string(),
                vec![
                    "recorded detection".to_string(),
                    "wrote 1 note".into(),
                    "marked mitigated".into(),
                    "resolved".into(),
                    "ran api-down".into()
                ]
            ),
            ("bob".to_string(), vec!["wrote 1 note".to_string()]),
        ]
    );
    // What was said where, and the finding of the step marked `report: true`.
    assert_eq!(pm["communications"][0]["target"], "console");
    assert_eq!(pm["communications"][0]["step"], "tell");
    assert_eq!(pm["communications"][0]["text"], "looking into it");
    assert_eq!(pm["findings"][0]["step"], "check");
    assert_eq!(pm["findings"][0]["text"], "checking");
    assert_eq!(pm["findings"][0]["fence"], "```");
    assert_eq!(pm["findings"].as_array().unwrap().len(), 1);
    assert!(
        pm["lessons"]["went_wrong"][0]
            .as_str()
            .unwrap()
            .starts_with("step `restart` of api-down failed in run "),
        "{}",
        pm["lessons"]
    );
    assert_eq!(pm["action_items"][0]["owner"], "team-api");
    // One alert: no per-alert section.
    assert_eq!(pm["alerts"], serde_json::json!([]));
    assert_eq!(pm["incident"]["owner"], "team-api");
    assert_eq!(pm["incident"]["services"], serde_json::json!(["api"]));
    assert_eq!(pm["runs"][0]["status"], "failed");
    assert_eq!(pm["runs"][0]["steps"][2]["reason"], "exited with status 1");
    assert_eq!(pm["runs"][0]["steps"][3]["status"], "skipped");
    // The file-safe id works as well as the raw one.
    let safe = std::fs::read_dir(state.path().join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let by_safe = state
        .irctl()
        .args(["postmortem", "--incident", &safe, "--format", "json"])
        .run()
        .json();
    assert_eq!(by_safe["incident"]["id"], INCIDENT);
}

#[test]
fn template_renders_the_same_data_and_output_goes_to_a_file() {
    let state = incident_with_history();
    let template = "{{ incident.title }} ({{ incident.severity }}): TTD {{ durations.time_to_detect.text }}, TTR {{ durations.time_to_resolve.text }}\n{% for n in notes %}- {{ n.time }} {{ n.text }}\n{% endfor %}";
    let out = state
        .irctl()
        .file("ours.md.j2", template)
        .args([
            "postmortem",
            "--incident",
            INCIDENT,
            "--template",
            "ours.md.j2",
        ])
        .args(["-o", "pm.md"])
        .stderr("wrote pm.md\n")
        .stdout("")
        .run();
    let written = std::fs::read_to_string(out.tempdir.path().join("pm.md")).unwrap();
    assert_eq!(
        written,
        "API is down (critical): TTD 2m00s, TTR 30m00s\n- 2000-01-01T10:05:00Z bob: restart failed | rolled back by hand\n- 2000-01-01T10:20:00Z alice: error rate back to normal [mitigated]\n"
    );
    // Mistakes in a template are input errors that say where.
    state
        .irctl()
        .file("bad.md.j2", "line one\n{% for x in %}\n")
        .args([
            "postmortem",
            "--incident",
            INCIDENT,
            "--template",
            "bad.md.j2",
        ])
        .status(2)
        .stderr_contains("invalid template `bad.md.j2`: line 2")
        .run();
    state
        .irctl()
        .file("typo.md.j2", "{{ incident.titel }}\n")
        .args([
            "postmortem",
            "--incident",
            INCIDENT,
            "--template",
            "typo.md.j2",
        ])
        .status(2)
        .stderr_contains("cannot render template `typo.md.j2`: line 1")
        .run();
    state
        .irctl()
        .args([
            "postmortem",
            "--incident",
            INCIDENT,
            "--template",
            "missing.j2",
        ])
        .status(2)
        .stderr_contains("cannot read template `missing.j2`")
        .run();
}

#[test]
fn unknown_incident_is_a_clear_error() {
    State::new()
        .irctl()
        .args(["postmortem", "--incident", "nope"])
        .status(2)
        .stderr_contains("no runs, notes or detections for incident `nope`")
        .run();
    // A template path that never ends is an error, not a hang or an OOM.
    State::new()
        .irctl()
        .args(["postmortem", "--incident", "nope", "--template", "/dev/zero"])
        .status(2)
        .stderr("error: cannot read template `/dev/zero`\n  caused by: larger than the 1048576-byte limit\n")
        .run();
}

#[test]
fn changes_since_lists_commits_that_touched_the_playbook() {
    use git2::{Repository, Signature};
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let sig = Signature::now("Dana", "dana@example.com").unwrap();
    let commit = |file: &str, text: &str, message: &str| {
        std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
        std::fs::write(dir.path().join(file), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(std::path::Path::new(file)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    };
    let ran = commit("playbooks/api.yaml", "v1", "Add api playbook");
    let changed = commit("playbooks/api.yaml", "v2", "Raise the timeout");
    commit("playbooks/other.yaml", "x", "Unrelated playbook");
    let repo_path = dir.path().display().to_string();
    let changes =
        irctl::record::history::changes_since(&repo_path, None, &ran, "playbooks/api.yaml")
            .expect("known");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].commit, changed);
    assert_eq!(changes[0].subject, "Raise the timeout");
    assert_eq!(changes[0].author, "Dana");
    assert_eq!(changes[0].email, "dana@example.com");
    // A postmortem writes it under its own names, the time in UTC.
    #[derive(serde::Serialize)]
    struct PlaybookChanges {
        #[serde(serialize_with = "irctl::record::history::serialize_changes")]
        changes: Option<Vec<irctl::record::history::Change>>,
    }
    let shown = serde_json::to_value(PlaybookChanges {
        changes: Some(changes.clone()),
    })
    .unwrap();
    let shown = &shown["changes"][0];
    assert_eq!(shown["commit"], changed.as_str());
    assert_eq!(shown["summary"], "Raise the timeout");
    assert_eq!(shown["author"], "Dana");
    assert!(shown["time"].as_str().unwrap().ends_with('Z'), "{shown}");
    assert_eq!(shown.as_object().unwrap().len(), 4);
    assert!(
        irctl::record::history::changes_since(&repo_path, None, &changed, "playbooks/api.yaml")
            .unwrap()
            .is_empty()
    );
    // The path as shown where irctl ran, below or above the repository root.
    let from_elsewhere =
        irctl::record::history::changes_since(&repo_path, None, &ran, "../ops/playbooks/api.yaml")
            .expect("found by suffix");
    assert_eq!(from_elsewhere.len(), 1);
    // Unknown, with the reason, but never an error.
    let gone = irctl::record::history::changes_since(
        "https://git.example/playbooks.git",
        None,
        &ran,
        "playbooks/api.yaml",
    )
    .unwrap_err();
    assert!(gone.contains("not available locally"), "{gone}");
}

/// A postmortem as JSON.
fn postmortem_json(state: &State) -> serde_json::Value {
    state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT, "--format", "json"])
        .run()
        .json()
}

#[test]
fn a_delayed_payload_is_never_resolved_before_it_was_detected() {
    // Both payloads arrive a day late (irctl's clock is 2000-01-02): the
    // detection and the resolution both come from the sender's own times.
    let state = State::new();
    state
        .irctl()
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args(["ingest", "--incident", "firing.json"])
        .stdout_contains("at 2000-01-01T10:00:00Z")
        .run();
    state
        .irctl()
        .file(
            "resolved.json",
            alertmanager("resolved", "2000-01-01T10:20:00Z"),
        )
        .args(["ingest", "--incident", "resolved.json"])
        .run();
    let pm = postmortem_json(&state);
    assert_eq!(pm["times"]["detected"], "2000-01-01T10:00:00Z");
    assert_eq!(pm["times"]["resolved"], "2000-01-01T10:20:00Z");
    assert_eq!(pm["time_sources"]["detected"], "from Alertmanager startsAt");
    assert_eq!(pm["time_sources"]["resolved"], "from Alertmanager endsAt");
    assert_eq!(pm["durations"]["time_to_detect"]["seconds"], 0);
    assert_eq!(pm["durations"]["time_to_resolve"]["seconds"], 1200);
    assert_eq!(pm["time_warnings"], serde_json::json!([]));
    let md = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT])
        .run()
        .stdout;
    assert!(
        md.contains(
            "| Detected (the alert fired) | 2000-01-01T10:00:00Z | from Alertmanager startsAt |"
        ),
        "{md}"
    );
    assert!(!md.contains("Check these times"), "{md}");
}

#[test]
fn an_impossible_order_is_flagged_and_no_duration_is_negative() {
    let state = State::new();
    state
        .irctl()
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args(["ingest", "--incident", "firing.json"])
        .run();
    // Resolved an hour before the alert even started: a mistyped time.
    state
        .irctl()
        .args([
            "resolve",
            "--incident",
            INCIDENT,
            "--at",
            "2000-01-01T09:00:00Z",
        ])
        .run();
    let pm = postmortem_json(&state);
    assert_eq!(pm["durations"]["time_to_resolve"], serde_json::Value::Null);
    let warnings = pm["time_warnings"].as_array().unwrap();
    assert_eq!(
        warnings[0],
        "resolved (2000-01-01T09:00:00Z, stated by alice (--at)) is before started \
         (2000-01-01T10:00:00Z, from Alertmanager startsAt): the clocks disagree or a time was mistyped"
    );
    let md = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT])
        .run()
        .stdout;
    assert!(
        md.contains("> **Check these times:** resolved (2000-01-01T09:00:00Z"),
        "{md}"
    );
    assert!(
        md.contains("| Time to resolve (resolved − started) | unknown |"),
        "{md}"
    );
    for l in md.lines().filter(|l| l.starts_with("| Time to")) {
        assert!(!l.contains("| -"), "a negative duration: {l}");
    }
    // `stats` uses the same definitions: no negative figure, and a warning.
    let out = state.irctl().args(["stats", "--format", "json"]).run();
    let stats = out.json();
    assert_eq!(
        stats["incidents"][0]["time_to_resolve"],
        serde_json::Value::Null
    );
    assert_eq!(stats["mttr"], serde_json::Value::Null);
    assert!(out.stderr.contains("is before started"), "{}", out.stderr);
}

#[test]
fn a_findings_quote_cannot_break_the_document() {
    // Step output is untrusted: backtick fences, HTML, a terminal escape, a
    // bidi override and far too many lines.
    let playbook = r#"
        version: 1
        name: probe
        title: Probe
        match:
          labels: ['alertname="ApiDown"']
        steps:
          - id: probe
            report: true
            shell: |
              printf '```\n</pre><script>alert(1)</script>\n# not a heading\n\033[31mred\033[0m \342\200\256gnp.exe\n````\n'
              for i in $(seq 1 100); do echo "line $i"; done
        "#;
    let state = State::new();
    state
        .irctl()
        .playbook("probe.yaml", &unindent(playbook))
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args(["run", "--incident", "firing.json"])
        .run();
    let md = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT])
        .run()
        .stdout;
    let start = md.find("## Key findings").expect("a findings section");
    let section = &md[start..md[start..].find("## Lessons").unwrap() + start];
    // Opened and closed by a fence longer than any run of backticks inside.
    let lines: Vec<&str> = section.lines().collect();
    let open = lines.iter().position(|l| *l == "`````").expect(section);
    let close = lines.iter().rposition(|l| *l == "`````").unwrap();
    assert!(close > open + 1, "{section}");
    let inside = lines[open + 1..close].join("\n");
    assert!(inside.starts_with("```\n</pre><script>"), "{section}");
    assert!(inside.contains("# not a heading"));
    assert!(inside.contains("[31mred"), "{section}");
    assert!(!section.contains('\u{1b}'), "a terminal escape survived");
    assert!(!section.contains('\u{202e}'), "a bidi override survived");
    // Bounded: 40 lines at most, and it says so.
    assert_eq!(close - open - 1, 40, "{section}");
    assert!(section.contains("Cut short; `irctl timeline "), "{section}");
    assert!(!section.contains("line 100"));
}

#[test]
fn a_grouped_incident_lists_each_alert() {
    let payload = serde_json::json!({
        "version": "4",
        "status": "firing",
        "receiver": "irctl",
        "groupKey": INCIDENT,
        "groupLabels": { "alertname": "ApiDown" },
        "commonLabels": { "alertname": "ApiDown", "severity": "critical" },
        "commonAnnotations": {},
        "alerts": [
            { "status": "firing", "labels": { "alertname": "ApiDown", "pod": "api-1", "severity": "critical" },
              "annotations": {}, "startsAt": "2000-01-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "a1" },
            { "status": "firing", "labels": { "alertname": "ApiDown", "pod": "api-2", "severity": "critical" },
              "annotations": {}, "startsAt": "2000-01-01T09:58:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "a2" }
        ]
    });
    let state = State::new();
    state
        .irctl()
        .file("group.json", payload.to_string())
        .args(["ingest", "--incident", "group.json"])
        .run();
    let pm = postmortem_json(&state);
    assert_eq!(pm["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(
        pm["alerts"][1]["labels"],
        "alertname=ApiDown pod=api-2 severity=critical"
    );
    assert_eq!(pm["alerts"][1]["started"], "2000-01-01T09:58:00Z");
    // Impact started with the earliest alert.
    assert_eq!(pm["times"]["started"], "2000-01-01T09:58:00Z");
    assert_eq!(pm["impact"]["alert_count"], 2);
    let md = state
        .irctl()
        .args(["postmortem", "--incident", INCIDENT])
        .run()
        .stdout;
    assert!(
        md.contains("| firing | alertname=ApiDown pod=api-1 severity=critical | 2000-01-01T10:00:00Z |  | a1 |"),
        "{md}"
    );
}

#[test]
fn custom_templates_see_the_new_sections() {
    let state = incident_with_history();
    let template = "{{ time_sources.detected }}|{{ times.acknowledged }}|{{ durations.time_to_mitigate.text }}|{% for r in responders %}{{ r.name }}:{{ r.roles | join(\"+\") }};{% endfor %}|{{ communications[0].target }}|{{ findings[0].fence }}{{ findings[0].text }}{{ findings[0].fence }}|{{ key_times[0].source }}|{{ summary[:11] }}\n";
    state
        .irctl()
        .file("t.j2", template)
        .args(["postmortem", "--incident", INCIDENT, "--template", "t.j2"])
        .stdout(
            "stated by alice (--at)|2000-01-01T10:05:00Z|20m00s|alice:recorded detection+wrote 1 note+marked mitigated+resolved+ran api-down;bob:wrote 1 note;|console|```checking```|from Alertmanager startsAt|API is down\n",
        )
        .run();
}
