//! What serve serves — how many playbooks are loaded (for `/readyz`) and the
//! payload mappings behind `/hooks/NAME` — and how it is replaced while
//! serve runs.
//!
//! The served set is one immutable [`Served`] behind an `Arc`, swapped whole
//! ([`View::offer`]): a request reads one snapshot and never sees half of a
//! reload. A new set comes from a successful Git refresh ([`super::refresh`])
//! or from SIGHUP ([`Reloader`], which also reads the secrets file and the
//! TLS files again). A set that would break what serves — no valid playbook
//! left, or a playbook, mapping or teams file that loaded before and now has
//! errors — is refused: the last good set keeps serving, and `/readyz` and
//! `/metrics` say which commit is served and that the last reload failed.
//! Files that already had errors when serve started stay skipped, as they
//! were then.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::incident::Mapping;
use crate::source::{self, GitSpec, Spec};

use super::metrics::{family, label};

/// The playbooks and mappings serve answers with, as one snapshot.
#[derive(Debug)]
pub struct Served {
    /// How many valid playbooks were loaded (0: not ready).
    pub playbooks: usize,
    /// The payload mappings, each served at `/hooks/NAME`.
    pub mappings: Vec<Mapping>,
    /// The Git commit they were read at, when they come from a repository.
    pub commit: Option<String>,
    /// The files skipped for their errors.
    pub broken: BTreeSet<String>,
}

impl Served {
    /// Checks what `read` holds: playbooks, mappings, teams file. With
    /// `git`, the commit is `commit` or else the one the playbooks were read at.
    pub fn check(read: source::Read, git: bool, commit: Option<String>) -> Served {
        let (mappings, broken_mappings) = read.mappings();
        let set = read.load().set;
        let mut served = Served::of(&set, mappings, git, commit);
        served.broken.extend(broken_mappings);
        served
    }

    /// What serving `set` and `mappings` means. With `git`, the commit is
    /// `commit` or else the one the playbooks were read at.
    pub fn of(
        set: &crate::playbook::PlaybookSet,
        mappings: Vec<Mapping>,
        git: bool,
        commit: Option<String>,
    ) -> Served {
        let commit = commit.or_else(|| {
            set.playbooks
                .iter()
                .find_map(|p| p.provenance.commit.clone())
                .filter(|_| git)
        });
        Served {
            playbooks: set.playbooks.len(),
            mappings,
            commit,
            broken: set.broken_files().into_iter().map(String::from).collect(),
        }
    }

    fn mapping_names(&self) -> BTreeSet<&str> {
        self.mappings.iter().map(|m| m.name.as_str()).collect()
    }

    /// Why serving `next` instead of `self` would break something, if it would.
    fn refuses(&self, next: &Served) -> Option<String> {
        if next.playbooks == 0 {
            return Some("no valid playbook is left".into());
        }
        let newly: Vec<&str> = next
            .broken
            .difference(&self.broken)
            .map(String::as_str)
            .collect();
        if newly.is_empty() {
            return None;
        }
        Some(format!(
            "{} ha{} errors (`irctl validate` shows them)",
            newly
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if newly.len() == 1 { "s" } else { "ve" }
        ))
    }
}

/// Where playbooks are read again from on a reload.
#[derive(Clone, Debug)]
pub enum Origin {
    /// `--playbooks DIR`.
    Dir(PathBuf),
    /// `--repo`: read from the cache, never fetched here.
    Git(GitSpec),
}

/// Reads and checks the playbooks of `origin` — at `commit` for a Git
/// source, else at what its ref names in the cache. Blocking.
pub fn load(origin: &Origin, commit: Option<&str>) -> anyhow::Result<Served> {
    let spec = match origin {
        Origin::Dir(dir) => Spec::Dir(vec![dir.clone()]),
        Origin::Git(git) => Spec::Git(GitSpec {
            offline: true,
            pin_commit: commit.map(str::to_string),
            ..git.clone()
        }),
    };
    let read = source::read(&spec)?;
    let git = matches!(origin, Origin::Git(_));
    Ok(Served::check(read, git, commit.map(str::to_string)))
}

/// The last reload that was refused, until one succeeds.
#[derive(Clone, Debug)]
struct Refused {
    at: String,
    commit: Option<String>,
    why: String,
}

/// The served set, replaced whole, and how the reloads went.
pub struct View {
    current: RwLock<Arc<Served>>,
    refused: Mutex<Option<Refused>>,
    applied: AtomicU64,
    failed: AtomicU64,
}

impl View {
    /// Serves `served` until a reload replaces it.
    pub fn new(served: Served) -> View {
        View {
            current: RwLock::new(Arc::new(served)),
            refused: Mutex::new(None),
            applied: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The set served now.
    pub fn get(&self) -> Arc<Served> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `next` instead, unless it cannot be read or would break what
    /// serves. Says what changed, or why it was refused.
    pub fn offer(&self, next: anyhow::Result<Served>) -> Result<String, String> {
        let current = self.get();
        let next = match next {
            Ok(n) => n,
            Err(e) => return Err(self.refuse(&current, None, format!("{e:#}"))),
        };
        if let Some(why) = current.refuses(&next) {
            return Err(self.refuse(&current, next.commit.clone(), why));
        }
        let change = describe_change(&current, &next);
        match self.current.write() {
            Ok(mut c) => *c = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        if let Ok(mut r) = self.refused.lock() {
            *r = None;
        }
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(change)
    }

    fn refuse(&self, current: &Served, commit: Option<String>, why: String) -> String {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let shown = format!(
            "{why}; still serving {}",
            served_at(current.playbooks, current.commit.as_deref())
        );
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(Refused {
                at: crate::timeline::stamp(chrono::Utc::now()),
                commit,
                why: why.clone(),
            });
        }
        shown
    }

    /// The lines `/readyz` adds after `ready`: what is served, and the
    /// last reload's failure while it stands.
    pub fn describe(&self) -> String {
        let current = self.get();
        let mut out = format!(
            "serving: {}\n",
            served_at(current.playbooks, current.commit.as_deref())
        );
        if let Ok(r) = self.refused.lock()
            && let Some(r) = r.as_ref()
        {
            let _ = writeln!(
                out,
                "last reload: failed at {}{}: {}",
                r.at,
                r.commit
                    .as_deref()
                    .map(|c| format!(" (commit {})", short(c)))
                    .unwrap_or_default(),
                r.why.replace('\n', " ")
            );
        }
        out
    }

    /// The served set's families for `/metrics`.
    pub fn render(&self, out: &mut String) {
        let current = self.get();
        family(
            out,
            "irctl_serve_playbooks_loaded",
            "gauge",
            "Valid playbooks in the set serve serves.",
        );
        let _ = writeln!(out, "irctl_serve_playbooks_loaded {}", current.playbooks);
        family(
            out,
            "irctl_serve_playbooks_info",
            "gauge",
            "The commit of the served playbooks (empty for a directory).",
        );
        let _ = writeln!(
            out,
            "irctl_serve_playbooks_info{{commit=\"{}\"}} 1",
            label(current.commit.as_deref().unwrap_or(""))
        );
        family(
            out,
            "irctl_serve_reload_failed",
            "gauge",
            "1 while the last reload was refused and the previous set keeps serving.",
        );
        let failed = self.refused.lock().map(|r| r.is_some()).unwrap_or(false);
        let _ = writeln!(out, "irctl_serve_reload_failed {}", u8::from(failed));
        family(
            out,
            "irctl_serve_reloads_total",
            "counter",
            "Reloads of the playbooks and mappings, by outcome.",
        );
        let _ = writeln!(
            out,
            "irctl_serve_reloads_total{{outcome=\"applied\"}} {}\nirctl_serve_reloads_total{{outcome=\"refused\"}} {}",
            self.applied.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        );
    }
}

/// `3 playbooks at commit 3f2a9c1d4e5f`, or `3 playbooks` for a directory.
fn served_at(playbooks: usize, commit: Option<&str>) -> String {
    let n = format!(
        "{playbooks} playbook{}",
        if playbooks == 1 { "" } else { "s" }
    );
    match commit {
        Some(c) => format!("{n} at commit {}", short(c)),
        None => n,
    }
}

/// What a reload changed, for the log.
fn describe_change(before: &Served, after: &Served) -> String {
    let mut out = served_at(after.playbooks, after.commit.as_deref());
    if before.playbooks != after.playbooks {
        let _ = write!(out, " (was {})", before.playbooks);
    }
    let (old, new) = (before.mapping_names(), after.mapping_names());
    let added: Vec<&str> = new.difference(&old).copied().collect();
    let removed: Vec<&str> = old.difference(&new).copied().collect();
    if !added.is_empty() {
        let _ = write!(out, "; new hooks: /hooks/{}", added.join(", /hooks/"));
    }
    if !removed.is_empty() {
        let _ = write!(out, "; removed hooks: /hooks/{}", removed.join(", /hooks/"));
    }
    let _ = write!(
        out,
        "; {} mapping{}",
        after.mappings.len(),
        if after.mappings.len() == 1 { "" } else { "s" }
    );
    out
}

/// The first 12 hex digits of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(playbooks: usize, broken: &[&str]) -> Served {
        Served {
            playbooks,
            mappings: Vec::new(),
            commit: Some("0123456789abcdef".into()),
            broken: broken.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_set_that_breaks_a_file_or_loses_every_playbook_is_refused_whole() {
        let view = View::new(served(2, &["old-broken.yaml"]));
        assert!(view.offer(Ok(served(3, &["old-broken.yaml"]))).is_ok());
        assert_eq!(view.get().playbooks, 3);
        let e = view
            .offer(Ok(served(3, &["old-broken.yaml", "db.yaml"])))
            .unwrap_err();
        assert!(e.contains("`db.yaml` has errors"), "{e}");
        assert!(
            e.contains("still serving 3 playbooks at commit 0123456789ab"),
            "{e}"
        );
        let e = view.offer(Ok(served(0, &[]))).unwrap_err();
        assert!(e.contains("no valid playbook"), "{e}");
        let e = view.offer(Err(anyhow::anyhow!("cannot read"))).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
        assert_eq!(view.get().playbooks, 3);
        assert!(view.describe().contains("last reload: failed at"));
        let mut m = String::new();
        view.render(&mut m);
        assert!(m.contains("irctl_serve_reload_failed 1"), "{m}");
        assert!(
            m.contains("irctl_serve_reloads_total{outcome=\"refused\"} 3"),
            "{m}"
        );
        assert!(view.offer(Ok(served(1, &[]))).is_ok());
        assert!(!view.describe().contains("last reload"));
        let mut m = String::new();
        view.render(&mut m);
        assert!(m.contains("irctl_serve_reload_failed 0"), "{m}");
    }
}
