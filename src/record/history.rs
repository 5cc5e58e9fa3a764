//! Playbook history: the commits that changed a playbook file after the
//! commit a run used, so a postmortem can say "the playbook has changed since".
//!
//! The walk itself is `source::history`'s (the one `irctl history` uses); a
//! remote URL is read from irctl's Git cache. Best effort by design: the
//! repository may have no local clone, or be gone. Then the answer is "unknown" with the reason, never an
//! error, because a postmortem must not fail over a missing clone.

use git2::{Oid, Repository};
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
    let changes =
        crate::source::history::file_history_since(&r, tip.id(), Some(base), &path, usize::MAX)
            .map_err(|e| format!("{e:#}"))?;
    Ok(changes
        .into_iter()
        .map(|c| Change {
            time: super::parse_time(&c.date)
                .map(super::show_time)
                .unwrap_or(c.date),
            commit: c.commit,
            summary: c.subject,
            author: c.author,
        })
        .collect())
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
