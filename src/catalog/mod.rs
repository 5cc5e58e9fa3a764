//! Ownership from the service catalog teams already keep: Backstage catalog
//! files read with no Backstage server, and CODEOWNERS as the fallback.
//!
//! [`find`] decides where the catalog is and [`load`] reads it ([`tree`]
//! confines and bounds the reads) into a [`Catalog`] of [`model::Entity`]s whose references
//! ([`refs`]) follow Backstage's syntax and defaulting rules; [`check`]
//! reports what `irctl validate` must know (unknown references, services
//! without an owner, dependency cycles); [`resolve`] turns an incident into
//! its [`Ownership`]: the service the alert is about, the team that owns
//! the incident and why, and the services impacted downstream.
//!
//! Teams are named by their canonical reference (`group:default/platform`):
//! how a team is reached (its channels) is kept elsewhere, keyed the same way.

pub mod check;
pub mod codeowners;
pub mod find;
pub mod load;
pub mod model;
pub mod refs;
pub mod resolve;
pub mod tree;

use std::collections::{BTreeMap, HashMap};

pub use load::{ENTRY_FILE, Request, load};
pub use refs::EntityRef;
pub use resolve::{Impacted, Owner, Ownership, Service};

use crate::diagnostic::Diagnostic;
use crate::yaml::Spanned;
use codeowners::CodeOwners;
use model::Entity;

/// Label names that name the service an alert is about, by default.
pub const DEFAULT_SERVICE_LABELS: &[&str] = &["service", "app.kubernetes.io/name"];
/// The team that owns platform alerts, by default.
pub const DEFAULT_PLATFORM_TEAM: &str = "group:default/platform";
/// Component `spec.type`s that are platform, by default.
pub const DEFAULT_PLATFORM_TYPES: &[&str] = &["infrastructure", "platform"];
/// How far impact is followed downstream, by default.
pub const DEFAULT_IMPACT_DEPTH: usize = 3;
/// How far impact may be followed at most.
pub const MAX_IMPACT_DEPTH: usize = 10;

/// Annotations on the entry file's `Location` that tune ownership.
pub mod setting {
    /// Comma-separated label names naming the service.
    pub const SERVICE_LABELS: &str = "irctl.dev/service-labels";
    /// The team owning platform alerts (an entity reference, default kind Group).
    pub const PLATFORM_TEAM: &str = "irctl.dev/platform-team";
    /// Comma-separated Component `spec.type`s that are platform.
    pub const PLATFORM_TYPES: &str = "irctl.dev/platform-types";
    /// How many dependency hops impact is followed.
    pub const IMPACT_DEPTH: &str = "irctl.dev/impact-depth";
}

/// How alerts map to services and owners.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Labels whose value names the service (tried in order).
    pub service_labels: Vec<String>,
    /// The team that owns alerts about platform entities.
    pub platform_team: EntityRef,
    /// Component `spec.type`s that make a Component platform.
    pub platform_types: Vec<String>,
    /// Dependency hops followed for `impacted`.
    pub impact_depth: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            service_labels: DEFAULT_SERVICE_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            platform_team: EntityRef::new("group", refs::DEFAULT_NAMESPACE, "platform"),
            platform_types: DEFAULT_PLATFORM_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            impact_depth: DEFAULT_IMPACT_DEPTH,
        }
    }
}

impl Settings {
    /// Applies the `irctl.dev/*` settings annotations, reporting bad values.
    fn apply(
        &mut self,
        annotations: &BTreeMap<String, Spanned<String>>,
        file: &str,
        diags: &mut Vec<Diagnostic>,
    ) {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        for (key, value) in annotations {
            let bad = |msg: String| Diagnostic::error(file, value.pos, "catalog-setting", msg);
            match key.as_str() {
                setting::SERVICE_LABELS => self.service_labels = list(&value.value),
                setting::PLATFORM_TYPES => {
                    self.platform_types = list(&value.value.to_lowercase());
                }
                setting::PLATFORM_TEAM => {
                    match EntityRef::parse(&value.value, Some("group"), refs::DEFAULT_NAMESPACE) {
                        Ok(r) => self.platform_team = r,
                        Err(e) => diags.push(bad(e.to_string())),
                    }
                }
                setting::IMPACT_DEPTH => match value.value.trim().parse::<usize>() {
                    Ok(n) if n <= MAX_IMPACT_DEPTH => self.impact_depth = n,
                    _ => diags.push(bad(format!(
                        "`{}: {}` must be a number from 0 to {MAX_IMPACT_DEPTH}",
                        key, value.value
                    ))),
                },
                _ => {}
            }
        }
    }
}

/// A loaded catalog and what was found reading it.
#[derive(Debug)]
pub struct Catalog {
    /// Where it was read from, for messages.
    pub origin: String,
    /// The entities by canonical reference (Locations are not kept).
    pub entities: BTreeMap<EntityRef, Entity>,
    /// Problems found while reading (file, line and column).
    pub diagnostics: Vec<Diagnostic>,
    /// The files read, as shown to users.
    pub files: Vec<String>,
    /// Their text, for source lines under findings.
    pub sources: HashMap<String, String>,
    /// Things the user must know (a failed fetch).
    pub warnings: Vec<String>,
    /// How alerts map to services and owners.
    pub settings: Settings,
    /// The repository's CODEOWNERS, when it has one.
    pub codeowners: Option<CodeOwners>,
    paths: find::PathMap,
}

impl Catalog {
    /// The entity `r` names.
    pub fn get(&self, r: &EntityRef) -> Option<&Entity> {
        self.entities.get(r)
    }

    /// What CODEOWNERS says about the playbook file `path` (as its provenance shows it).
    pub fn codeowner_of(&self, path: &str) -> Option<codeowners::Decision> {
        let rel = self.paths.relative(path)?;
        self.codeowners.as_ref()?.owner_of(&rel)
    }

    /// The CODEOWNERS file read, as shown to users.
    pub fn codeowners_file(&self) -> Option<&str> {
        self.codeowners.as_ref().map(|c| c.file.as_str())
    }
}
