//! What changed, from Git: the commits that touched one playbook file
//! (`irctl history`), and the files that differ from a ref
//! (`irctl validate --changed-since`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context as _;
use git2::{Oid, Repository, Sort};
use serde::Serialize;

/// One commit that changed a file.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Full commit id.
    pub commit: String,
    /// Commit time, RFC 3339 in the committer's offset.
    pub date: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub email: String,
    /// First line of the message.
    pub subject: String,
}

/// The commits reachable from `from` that changed `path` (repository-relative),
/// newest first, at most `limit`. A commit counts when the file differs from
/// every parent (as `git log` simplifies merges).
pub fn file_history(
    repo: &Repository,
    from: Oid,
    path: &str,
    limit: usize,
) -> anyhow::Result<Vec<Change>> {
    file_history_since(repo, from, None, path, limit)
}

/// [`file_history`] without the commits reachable from `since` (`since..from`):
/// what changed in a playbook after the commit a run used.
pub fn file_history_since(
    repo: &Repository,
    from: Oid,
    since: Option<Oid>,
    path: &str,
    limit: usize,
) -> anyhow::Result<Vec<Change>> {
    let mut walk = repo.revwalk().context("cannot walk the history")?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .context("cannot sort the history")?;
    walk.push(from).context("cannot walk the history")?;
    if let Some(since) = since {
        walk.hide(since)
            .with_context(|| format!("cannot walk the history after {since}"))?;
    }
    let path = Path::new(path);
    // Each commit is looked at twice (as itself and as a parent): remember.
    let mut seen: HashMap<Oid, Option<Oid>> = HashMap::new();
    let mut entry_at = |commit: &git2::Commit<'_>| -> Option<Oid> {
        *seen
            .entry(commit.id())
            .or_insert_with(|| commit.tree().ok()?.get_path(path).ok().map(|e| e.id()))
    };
    let mut out = Vec::new();
    for oid in walk {
        let oid = oid.context("cannot walk the history")?;
        let commit = repo
            .find_commit(oid)
            .with_context(|| format!("cannot read commit {oid}"))?;
        let here = entry_at(&commit);
        let changed = if commit.parent_count() == 0 {
            here.is_some()
        } else {
            commit.parents().all(|p| entry_at(&p) != here)
        };
        if !changed {
            continue;
        }
        let author = commit.author();
        let time = commit.time();
        let date = chrono::DateTime::from_timestamp(time.seconds(), 0)
            .and_then(|d| {
                chrono::FixedOffset::east_opt(time.offset_minutes() * 60)
                    .map(|off| d.with_timezone(&off).to_rfc3339())
            })
            .unwrap_or_default();
        out.push(Change {
            commit: oid.to_string(),
            date,
            author: author.name().unwrap_or("?").to_string(),
            email: author.email().unwrap_or("").to_string(),
            subject: commit.summary().ok().flatten().unwrap_or("").to_string(),
        });
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Repository-relative paths that differ between `base` and `target`, or
/// between `base` and the working directory (untracked files included)
/// when `target` is `None`.
pub fn changed_paths(
    repo: &Repository,
    base: Oid,
    target: Option<Oid>,
) -> anyhow::Result<BTreeSet<String>> {
    let base_tree = repo
        .find_commit(base)
        .and_then(|c| c.tree())
        .with_context(|| format!("cannot read the tree of {base}"))?;
    let mut opts = git2::DiffOptions::new();
    let diff = match target {
        Some(t) => {
            let tree = repo
                .find_commit(t)
                .and_then(|c| c.tree())
                .with_context(|| format!("cannot read the tree of {t}"))?;
            repo.diff_tree_to_tree(Some(&base_tree), Some(&tree), Some(&mut opts))
        }
        None => {
            opts.include_untracked(true).recurse_untracked_dirs(true);
            repo.diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut opts))
        }
    }
    .context("cannot compare with the base ref")?;
    let mut out = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path().and_then(Path::to_str) {
                out.insert(p.to_string());
            }
        }
    }
    Ok(out)
}
