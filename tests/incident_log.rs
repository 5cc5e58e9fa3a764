//! Incident logs and the ids that name them, through the binary: `note` on
//! an unknown incident, ambiguous short ids, ids that a file name would
//! confuse, links planted in a shared state dir, and logs written before
//! the hashed names.

mod common;
#[path = "support/state.rs"]
mod state;

use std::path::Path;

use state::State;

#[test]
fn an_ambiguous_short_id_is_refused() {
    use sha2::{Digest, Sha256};
    let prefix = |id: &str| hex::encode(Sha256::digest(id.as_bytes()))[..4].to_string();
    // Two ids whose short ids share their first four digits.
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0..100_000)
        .map(|n| format!("INC-{n}"))
        .find_map(|id| {
            seen.insert(prefix(&id), id.clone())
                .map(|other| (other, id))
        })
        .expect("a shared prefix among 100,000 ids");
    let state = State::new();
    for id in [&a, &b] {
        state
            .irctl()
            .args(["note", "--create", "--incident", id, "seen"])
            .run();
    }
    state
        .irctl()
        .args(["note", "--incident", &prefix(&a), "which one?"])
        .status(2)
        .stderr_contains("is the start of several incidents' short ids")
        .stderr_contains(&a)
        .stderr_contains(&b)
        .run();
}

#[test]
fn a_note_on_an_unknown_incident_is_an_error_unless_create() {
    let state = State::new();
    state
        .irctl()
        .args([
            "note",
            "--create",
            "--incident",
            "INC-1042",
            "paged the vendor",
        ])
        .stderr_contains("no runs or notes for incident `INC-1042` yet; starting its record")
        .run();
    state
        .irctl()
        .args(["note", "--incident", "INC-1024", "typo"])
        .status(2)
        .stderr_contains("no incident `INC-1024` in `")
        .stderr_contains("did you mean `INC-1042`?")
        .run();
    let stats = state
        .irctl()
        .args(["stats", "--format", "json"])
        .run()
        .json();
    assert_eq!(stats["incidents"].as_array().unwrap().len(), 1);
}

#[test]
fn incident_ids_that_map_alike_never_share_a_log() {
    // What the file-safe form of `a/b` used to be: `a_b-` and 12 digits of a hash.
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(3u64.to_le_bytes());
    h.update(b"a/b");
    let crafted = format!("a_b-{}", &hex::encode(h.finalize())[..12]);
    let long = "x".repeat(200);
    // The crafted id first: once `a/b` exists, its file-safe form names it.
    let ids = [
        crafted,
        "a/b".to_string(),
        "a_b".to_string(),
        "ABC".to_string(),
        "abc".to_string(),
        long.clone(),
        format!("{long}y"),
    ];
    let state = State::new();
    for id in &ids {
        state
            .irctl()
            .args([
                "note",
                "--create",
                "--incident",
                id,
                &format!("note of {id}"),
            ])
            .run();
    }
    let dirs = std::fs::read_dir(state.path().join("incidents"))
        .unwrap()
        .count();
    assert_eq!(dirs, ids.len());
    for id in &ids {
        let shown = state
            .irctl()
            .args(["timeline", "--incident", id, "--format", "json"])
            .run()
            .json();
        let texts: Vec<&str> = shown
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, [format!("note of {id}")], "{id}");
    }
}

#[test]
fn incident_logs_never_follow_a_planted_link() {
    let state = State::new();
    let outside = state.path().with_file_name("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let incidents = state.path().join("incidents");
    std::fs::create_dir_all(&incidents).unwrap();
    // A directory link where the log's directory goes…
    let name = irctl::record::incident_log::dir_name("INC-1");
    std::os::unix::fs::symlink(&outside, incidents.join(&name)).unwrap();
    state
        .irctl()
        .args(["note", "--create", "--incident", "INC-1", "hello"])
        .status(2)
        .stderr_contains("refusing to write an incident log through it")
        .run();
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // …and a file link (or a second hard link) where the log file goes.
    let name = irctl::record::incident_log::dir_name("INC-2");
    std::fs::create_dir_all(incidents.join(&name)).unwrap();
    let target = outside.join("victim");
    std::fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, incidents.join(&name).join("timeline.jsonl")).unwrap();
    state
        .irctl()
        .args(["note", "--create", "--incident", "INC-2", "hello"])
        .status(2)
        .stderr_contains("a symbolic link")
        .run();
    let name = irctl::record::incident_log::dir_name("INC-3");
    std::fs::create_dir_all(incidents.join(&name)).unwrap();
    std::fs::hard_link(&target, incidents.join(&name).join("timeline.jsonl")).unwrap();
    state
        .irctl()
        .args(["note", "--create", "--incident", "INC-3", "hello"])
        .status(2)
        .stderr_contains("not a regular file with a single link")
        .run();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
}

#[test]
fn an_incident_log_written_before_hashed_names_keeps_reading_and_growing() {
    let state = State::new();
    let legacy = state.path().join("incidents/INC-OK-1");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timelines/incident-log.jsonl"),
        legacy.join("timeline.jsonl"),
    )
    .unwrap();
    state
        .irctl()
        .args(["note", "--incident", "INC-OK-1", "one more"])
        .stdout_contains("(event 5)")
        .run();
    let text = std::fs::read_to_string(legacy.join("timeline.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 5);
    state
        .irctl()
        .args(["timeline", "verify", "--incident", "INC-OK-1"])
        .stdout_contains("chain intact, 5 events")
        .run();
}
