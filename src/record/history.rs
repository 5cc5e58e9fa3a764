//! Playbook history: the commits that changed a playbook file after the
//! commit a run used, so a postmortem can say "the playbook has changed since".
//!
//! Best effort by design: the repository may be a remote URL with no local
//! clone, or gone. Then the answer is "unknown" with the reason, never an
//! error, because a postmortem must not fail over a missing clone.

use git2::{Oid, Repository, Sort};
use serde::Serialize;

/// One commit that changed the playbook.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// The commit id.
    pub commit: String,
    /// Its first line.
    pub summary: String,
    /// Its author's name.
    pub author: String,
    /// When it was committed (RFC 3339 UTC).
    pub time: String,
}

/// The commits after `commit` up to `git_ref` (or `HEAD`) in the repository
/// at `repo` that changed `path`, newest first; `Err` says why it is unknown.
pub fn changes_since(
    repo: &str,
    git_ref: Option<&str>,
    commit: &str,
    path: &str,
) -> Result<Vec<Change>, String> {
    let r = Repository::open(repo)
        .map_err(|_| format!("repository `{repo}` is not available locally"))?;
    let base = Oid::from_str(commit).map_err(|_| format!("`{commit}` is not a commit id"))?;
    let base_commit = r
        .find_commit(base)
        .map_err(|_| format!("commit `{commit}` is not in `{repo}` (fetch it to compare)"))?;
    let path = in_tree(&base_commit, path)
        .ok_or_else(|| format!("`{path}` is not in commit `{commit}`"))?;
    let path = path.as_path();
    let tip = git_ref
        .and_then(|name| r.revparse_single(name).ok())
        .or_else(|| r.revparse_single("HEAD").ok())
        .and_then(|o| o.peel_to_commit().ok())
        .ok_or_else(|| format!("cannot resolve `{}` in `{repo}`", git_ref.unwrap_or("HEAD")))?;
    let mut walk = r.revwalk().map_err(|e| e.message().to_string())?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(|e| e.message().to_string())?;
    walk.push(tip.id()).map_err(|e| e.message().to_string())?;
    walk.hide(base).map_err(|e| e.message().to_string())?;
    let blob_at = |c: &git2::Commit| {
        c.tree()
            .ok()
            .and_then(|t| t.get_path(path).ok())
            .map(|entry| entry.id())
    };
    let mut out = Vec::new();
    for oid in walk.filter_map(Result::ok) {
        let Ok(c) = r.find_commit(oid) else { continue };
        let before = c.parent(0).ok().and_then(|p| blob_at(&p));
        if blob_at(&c) == before {
            continue;
        }
        let time = chrono::DateTime::from_timestamp(c.time().seconds(), 0)
            .map(super::show_time)
            .unwrap_or_default();
        out.push(Change {
            commit: oid.to_string(),
            summary: c.summary().unwrap_or_default().to_string(),
            author: c.author().name().unwrap_or_default().to_string(),
            time,
        });
    }
    Ok(out)
}

/// The path of the playbook inside `commit`'s tree. The recorded path is the
/// one shown to users, relative to where irctl ran, which may be below the
/// repository root or above it (`../ops/playbooks/db.yaml`): try it, then
/// each shorter suffix, and take the first that exists.
fn in_tree(commit: &git2::Commit, shown: &str) -> Option<std::path::PathBuf> {
    let tree = commit.tree().ok()?;
    let parts: Vec<&str> = shown
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    (0..parts.len())
        .map(|skip| parts[skip..].join("/"))
        .map(std::path::PathBuf::from)
        .find(|candidate| tree.get_path(candidate).is_ok())
}
