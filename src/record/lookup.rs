//! Finding an incident by what people type: its id, the file-safe form
//! `irctl runs` shows, its incident log's directory name, or its short id
//! (the start of a hash of the id, which `irctl run` prints). An unknown
//! name suggests near ids and an ambiguous short id lists its candidates,
//! so a typo never starts or reads the wrong incident's record.

use std::path::Path;

use anyhow::Context as _;

use super::{file_safe_id, first_event, incident_log};
use crate::timeline;

/// The incident id recorded by the log whose directory is named `name`.
pub(super) fn logged_by_dir_name(state_dir: &Path, name: &str) -> Option<String> {
    let one_component =
        !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != "..";
    if !one_component {
        return None;
    }
    let path = state_dir
        .join(incident_log::DIR_NAME)
        .join(name)
        .join(timeline::FILE_NAME);
    first_event(&path).map(|e| e.incident_id)
}

/// The incident id each run's timeline opens with, read from first lines
/// only: enough to know which incidents (and episodes) have runs.
pub fn run_incident_ids(state_dir: &Path) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let runs_dir = state_dir.join("runs");
    let entries = match std::fs::read_dir(&runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read runs in `{}`", runs_dir.display()));
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| first_event(&e.path().join(timeline::FILE_NAME)))
        .map(|e| e.incident_id)
        .collect())
}

/// Every incident id the state directory knows, from runs and logs, sorted.
pub fn known_incident_ids(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = run_incident_ids(state_dir)?.into_iter().collect();
    ids.extend(incident_log::logged_ids(state_dir)?);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The short form of an incident id that commands accept: the first 8 hex
/// digits of the SHA-256 of the exact id.
pub fn short_incident_id(id: &str) -> String {
    incident_log::id_hash(id)[..8].to_string()
}

/// Why [`resolve_incident`] found no single incident.
#[derive(Debug, thiserror::Error)]
pub enum UnknownIncident {
    /// Nothing matches.
    #[error("no incident `{query}` in `{dir}`{help}; `irctl runs` lists incidents")]
    Unknown {
        /// What was asked for.
        query: String,
        /// The state directory.
        dir: String,
        /// `; did you mean …` when an id is close.
        help: String,
    },
    /// A short id that starts more than one incident's.
    #[error("`{query}` is the start of several incidents' short ids: {}; give more of it or the full id", .candidates.join(", "))]
    Ambiguous {
        /// What was asked for.
        query: String,
        /// Each match, as `SHORT (ID)`.
        candidates: Vec<String>,
    },
}

/// The exact id of the incident `query` names in `state_dir`: its id, its
/// file-safe form, its log's directory name, or (at least 4 hex digits of)
/// its short id. An unknown query or an ambiguous prefix is an error that
/// suggests near ids.
pub fn resolve_incident(state_dir: &Path, query: &str) -> anyhow::Result<String> {
    let ids = known_incident_ids(state_dir)?;
    if ids.iter().any(|id| id == query) {
        return Ok(query.to_string());
    }
    if let Some(id) = ids.iter().find(|id| file_safe_id(id) == query) {
        return Ok(id.clone());
    }
    if let Some(id) = logged_by_dir_name(state_dir, query) {
        return Ok(id);
    }
    let hex = query.to_ascii_lowercase();
    if hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let found: Vec<&String> = ids
            .iter()
            .filter(|id| incident_log::id_hash(id).starts_with(&hex))
            .collect();
        match found.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(UnknownIncident::Ambiguous {
                    query: query.to_string(),
                    candidates: many
                        .iter()
                        .map(|id| format!("{} ({id})", short_incident_id(id)))
                        .collect(),
                }
                .into());
            }
        }
    }
    let help = crate::diagnostic::did_you_mean(query, ids.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Err(UnknownIncident::Unknown {
        query: query.to_string(),
        dir: state_dir.display().to_string(),
        help,
    }
    .into())
}

/// The run `query` names in `state_dir`: its id, or the start or the
/// random end (`a1b2c3`) of exactly one run's id. An unknown or ambiguous
/// query is an error that lists what it could mean.
pub fn resolve_run(state_dir: &Path, query: &str) -> anyhow::Result<String> {
    let runs_dir = state_dir.join("runs");
    let ids: Vec<String> = match std::fs::read_dir(&runs_dir) {
        Ok(e) => e
            .filter_map(Result::ok)
            .filter(|e| e.path().join(timeline::FILE_NAME).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read runs in `{}`", runs_dir.display()));
        }
    };
    if ids.iter().any(|id| id == query) {
        return Ok(query.to_string());
    }
    let mut found: Vec<&String> = ids
        .iter()
        .filter(|id| {
            !query.is_empty() && (id.starts_with(query) || id.rsplit('-').next() == Some(query))
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let help = crate::diagnostic::did_you_mean(query, ids.iter().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            anyhow::bail!(
                "no run `{query}` in `{}`{help}; `irctl runs` lists them",
                state_dir.display()
            )
        }
        many => anyhow::bail!(
            "`{query}` starts or ends several runs' ids: {}; give more of it",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
