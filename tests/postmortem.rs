//! `irctl postmortem`: the built-in draft (snapshot), key times and
//! durations from known times, `--template`, `-o`, and playbook history from
//! a real Git repository.

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
      - id: restart
        needs: [check]
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
    assert_eq!(pm["incident"]["status"], "resolved");
    assert_eq!(pm["incident"]["owner"], "team-api");
    assert_eq!(pm["incident"]["services"], serde_json::json!(["api"]));
    assert_eq!(pm["runs"][0]["status"], "failed");
    assert_eq!(pm["runs"][0]["steps"][1]["reason"], "exited with status 1");
    assert_eq!(pm["runs"][0]["steps"][2]["status"], "skipped");
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
