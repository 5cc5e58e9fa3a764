//! Playbook history: the commits that changed a playbook file after the
//! commit a run used, so a postmortem can say "the playbook has changed since".
//!
//! The walk and its [`Change`] are `source::history`'s (the ones `irctl
//! history` uses); a postmortem writes a change under its own names
//! ([`serialize_changes`]), which custom templates read. A remote URL is read
//! from irctl's Git cache. Best effort by design: the repository may have no
//! local clone, or be gone. Then the answer is "unknown" with the reason,
//! never an error, because a postmortem must not fail over a missing clone.

use git2::{Oid, Repository};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

pub use crate::source::history::Change;

/// A change as a postmortem shows it: `commit`, `summary` (the subject),
/// `author` and `time` (RFC 3339 UTC).
struct Shown<'a>(&'a Change);

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let time = super::parse_time(&c.date)
            .map(super::show_time)
            .unwrap_or_else(|| c.date.clone());
        let mut out = s.serialize_struct("Change", 4)?;
        out.serialize_field("commit", &c.commit)?;
        out.serialize_field("summary", &c.subject)?;
        out.serialize_field("author", &c.author)?;
        out.serialize_field("time", &time)?;
        out.end()
    }
}

/// Writes a postmortem's `changes_since` (see [`Shown`]).
pub fn serialize_changes<S: Serializer>(
    changes: &Option<Vec<Change>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    changes
        .as_ref()
        .map(|list| list.iter().map(Shown).collect::<Vec<_>>())
        .serialize(s)
}

/// The commits after `commit` up to `git_ref` (or `HEAD`) in the repository
/// at `repo` that changed `path`, newest first; `Err` says why it is unknown.
/// A remote repository is looked up in irctl's Git cache.
pub fn changes_since(
    repo: &str,
    git_ref: Option<&str>,
    commit: &str,
    path: &str,
) -> Result<Vec<Change>, String> {
    let r = open(repo).ok_or_else(|| format!("repository `{repo}` is not available locally"))?;
    let base = Oid::from_str(commit).map_err(|_| format!("`{commit}` is not a commit id"))?;
    let base_commit = r
        .find_commit(base)
        .map_err(|_| format!("commit `{commit}` is not in `{repo}` (fetch it to compare)"))?;
    let path = in_tree(&base_commit, path)
        .ok_or_else(|| format!("`{path}` is not in commit `{commit}`"))?;
    let tip = git_ref
        .and_then(|name| r.revparse_single(name).ok())
        .or_else(|| r.revparse_single("HEAD").ok())
        .and_then(|o| o.peel_to_commit().ok())
        .ok_or_else(|| format!("cannot resolve `{}` in `{repo}`", git_ref.unwrap_or("HEAD")))?;
    crate::source::history::file_history_since(&r, tip.id(), Some(base), &path, usize::MAX)
        .map_err(|e| format!("{e:#}"))
}

/// The repository a run recorded: a local path or worktree, or the cached
/// clone of a remote URL (the same cache `--repo` fills).
fn open(repo: &str) -> Option<Repository> {
    Repository::open(repo).ok().or_else(|| {
        let remote = crate::source::auth::RemoteUrl::parse(repo).ok()?;
        let root = crate::source::default_cache_dir().ok()?;
        crate::source::git::Cache::of(&root, &remote).open()
    })
}

/// The path of the playbook inside `commit`'s tree. The recorded path is the
/// one shown to users, relative to where irctl ran, which may be below the
/// repository root or above it (`../ops/playbooks/db.yaml`): try it, then
/// each shorter suffix, and take the first that exists.
fn in_tree(commit: &git2::Commit, shown: &str) -> Option<String> {
    let tree = commit.tree().ok()?;
    let parts: Vec<&str> = shown
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    (0..parts.len())
        .map(|skip| parts[skip..].join("/"))
        .find(|candidate| tree.get_path(std::path::Path::new(candidate)).is_ok())
}

/// The bytes of blob `id` in the repository at `repo` (or irctl's cached
/// clone of it), when it is there.
pub fn blob(repo: &str, id: &str) -> Option<Vec<u8>> {
    let r = open(repo)?;
    let oid = Oid::from_str(id).ok()?;
    Some(r.find_blob(oid).ok()?.content().to_vec())
}
