//! `irctl validate` as one library call: every finding about a loaded set of
//! playbooks — each file's own checks (done while loading), the drill
//! cross-checks, the playbooks' test files — optionally narrowed to the
//! files changed since a Git base.
//!
//! The cross-file checks always see the whole set, even when only changed
//! files are reported: a rename in one file can break a drill in another.
//! The caller loads the source (and shows its warnings) and renders the
//! outcome with [`crate::report`].

use std::collections::HashMap;
use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::diagnostic::Diagnostic;
use crate::report::Summary;
use crate::source::{Loaded, Spec};

/// What to check beyond the loaded set.
#[derive(Debug, Default)]
pub struct Request {
    /// The service catalog beside the playbooks (or `--catalog`): its
    /// files' findings and [`crate::catalog::check`]'s are reported too.
    pub catalog: Option<Catalog>,
    /// Directories whose `NAME.test.yaml` files are checked too; empty for a
    /// Git source, whose test files `irctl test` cannot run anyway.
    pub test_dirs: Vec<PathBuf>,
    /// Report only the files changed since this commit-ish.
    pub changed_since: Option<String>,
}

impl Request {
    /// The request for playbooks loaded from `spec`: the test files of every
    /// directory it names.
    pub fn for_spec(spec: &Spec, changed_since: Option<String>) -> Self {
        let test_dirs = match spec {
            Spec::Dir(paths) => paths.iter().filter(|p| p.is_dir()).cloned().collect(),
            Spec::Git(_) => Vec::new(),
        };
        Request {
            catalog: None,
            test_dirs,
            changed_since,
        }
    }
}

/// What validation found.
#[derive(Debug)]
pub struct Outcome {
    /// Every finding reported, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// Every file reported on, as shown to users.
    pub files: Vec<String>,
    /// File text by path (playbooks and tests), for source lines under findings.
    pub sources: HashMap<String, String>,
    /// The counts.
    pub summary: Summary,
    /// Set when findings were narrowed to changed files.
    pub narrowed: Option<Narrowed>,
}

/// How far `--changed-since` narrowed the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Narrowed {
    /// Files changed since the base.
    pub changed: usize,
    /// Playbook files checked.
    pub files: usize,
    /// The base as given.
    pub base: String,
}

impl Outcome {
    /// Whether validation fails: any error, or any warning when denied.
    pub fn failed(&self, deny_warnings: bool) -> bool {
        self.summary.failed(deny_warnings)
    }
}

/// Validates `loaded` as `request` asks.
pub fn run(mut loaded: Loaded, request: &Request) -> anyhow::Result<Outcome> {
    // Catalog files are reported like playbook files, narrowed alike.
    if let Some(catalog) = &request.catalog {
        let set = &mut loaded.set;
        set.diagnostics.extend(catalog.diagnostics.iter().cloned());
        set.diagnostics
            .extend(crate::catalog::check::check(catalog));
        set.files.extend(catalog.files.iter().cloned());
        set.sources
            .extend(catalog.sources.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let found = crate::catalog::check::playbooks(request.catalog.as_ref(), &loaded.set.playbooks);
    loaded.set.diagnostics.extend(found);
    let changed = match &request.changed_since {
        Some(base) => Some((loaded.changed_since(base)?, base)),
        None => None,
    };
    let mut set = loaded.set;
    let drill_findings = crate::drill::lint::check(&set.playbooks);
    set.diagnostics.extend(drill_findings);
    // A broken test file fails CI here already, before `irctl test` runs.
    for dir in &request.test_dirs {
        let tests = crate::playtest::collect(&set, dir);
        set.diagnostics.extend(tests.diagnostics);
        set.sources.extend(tests.sources);
    }
    let narrowed = changed.map(|(changed, base)| {
        let narrowed = Narrowed {
            changed: changed.len(),
            files: set.files.len(),
            base: base.clone(),
        };
        set.diagnostics.retain(|d| changed.contains(&d.file));
        set.files.retain(|f| changed.contains(f));
        narrowed
    });
    Ok(Outcome {
        summary: Summary::of(&set.diagnostics, set.files.len()),
        diagnostics: set.diagnostics,
        files: set.files,
        sources: set.sources,
        narrowed,
    })
}
