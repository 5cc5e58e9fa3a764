//! Declarative payload mappings: any JSON sender, without a converter.
//!
//! A mapping is a YAML file in the playbook repository's `sources/` folder
//! saying how to recognise a sender's payload (JSON pointer conditions) and
//! how to read an incident out of it (one minijinja expression per field,
//! over `payload`). irctl ships mappings for Datadog and Opsgenie in
//! `playbooks/sources/`; a team adds its own the same way, reviewed like a
//! playbook and checked by `irctl validate`.
//!
//! ```yaml
//! version: 1
//! name: opsgenie
//! detect:                               # every condition must hold
//!   - { pointer: /action }              # exists
//!   - { pointer: /alert/alertId }
//! id: payload.alert.alertId
//! title: payload.alert.message
//! status: "'resolved' if payload.action == 'Close' else 'firing'"
//! labels_from: payload.alert.tags | tags
//! labels: { entity: payload.alert.entity }
//! ```
//!
//! Expressions run in their own environment: no loader (no files), no
//! globals but `payload`, a fuel budget so a loop cannot spin, and a missing
//! field is undefined rather than an error, since senders leave fields out.
//! Whatever they produce is untrusted incident data, exactly like a label
//! read by a built-in parser, and goes through the same [`super::limit`]s.
//!
//! The file and its checks are `file.rs`, the expressions' sandbox is
//! `expression.rs`, and reading a payload with a checked mapping is
//! `payload.rs`.

use std::collections::BTreeMap;

mod expression;
mod file;
mod payload;

pub use file::check;

/// The folder of the playbook directory (or `--repo-path`) holding mappings.
pub const DIR: &str = "sources";

/// A checked mapping, ready to recognise and read payloads.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The name used as the incident's `source` and by `--incident-format`.
    pub name: String,
    /// The file it was read from, as shown to users.
    pub file: String,
    /// What it reads, in a few words.
    pub description: Option<String>,
    detect: Vec<Condition>,
    fields: BTreeMap<&'static str, String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// One `detect` condition on the value at a JSON pointer.
#[derive(Clone, Debug)]
struct Condition {
    pointer: String,
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    Exists(bool),
    OneOf(Vec<String>),
}
