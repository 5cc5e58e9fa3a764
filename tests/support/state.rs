//! One state directory shared by every command of a record test, with a
//! fixed actor and clock, and the Alertmanager payloads those tests ingest.

#![allow(dead_code)]

use std::path::PathBuf;

use crate::common::Test;

/// A fixed "now" for commands that read the clock (see `IRCTL_NOW` in the README).
pub const NOW: &str = "2000-01-02T00:00:00Z";

/// The group key of the Alertmanager incident [`alertmanager`] describes.
pub const INCIDENT: &str = "{}:{alertname=\"ApiDown\"}";

/// One state directory shared by every command of a test.
pub struct State {
    dir: tempfile::TempDir,
}

impl State {
    /// A fresh, empty state directory.
    pub fn new() -> Self {
        State {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The state directory (`IRCTL_STATE_DIR`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `irctl` with this state dir, a fixed actor and a fixed clock.
    pub fn irctl(&self) -> Test {
        Test::new()
            .env("IRCTL_STATE_DIR", &self.path().display().to_string())
            .env("IRCTL_ACTOR", "alice")
            .env("IRCTL_NOW", NOW)
    }
}

/// An Alertmanager webhook for the `ApiDown` alert that started at
/// 2000-01-01T10:00:00Z, `firing` or `resolved` (ending at `ends_at`).
pub fn alertmanager(status: &str, ends_at: &str) -> String {
    alertmanager_from("2000-01-01T10:00:00Z", status, ends_at)
}

/// [`alertmanager`] for an alert that started at `starts_at` (a re-fire).
pub fn alertmanager_from(starts_at: &str, status: &str, ends_at: &str) -> String {
    serde_json::json!({
        "version": "4",
        "status": status,
        "receiver": "irctl",
        "groupKey": INCIDENT,
        "groupLabels": { "alertname": "ApiDown" },
        "commonLabels": { "alertname": "ApiDown", "app": "t", "service": "api", "severity": "critical" },
        "commonAnnotations": { "summary": "API is down" },
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": status,
            "labels": { "alertname": "ApiDown", "app": "t", "service": "api", "severity": "critical" },
            "annotations": { "summary": "API is down" },
            "startsAt": starts_at,
            "endsAt": ends_at,
            "fingerprint": "f00d"
        }]
    })
    .to_string()
}

/// Snapshot filters for what differs between runs: run ids, times, durations.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]"),
        (r"20[1-9]\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[NOW]"),
        // The postmortem's gantt writes times with a space and milliseconds.
        (r"20[1-9]\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", "[NOW]"),
        (r"\b\d+ms\b|\b\d+\.\ds\b", "[DUR]"),
        (r"\d+d\d\dh", "[DAYS]"),
        (r"sha256:[0-9a-f]{64}", "[HASH]"),
    ]
}
