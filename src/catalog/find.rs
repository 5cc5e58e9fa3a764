//! Where the catalog is: the [`Tree`] to read and its entry files.
//!
//! Discovery, first that applies:
//! 1. `--catalog PATH`: a file, or every `*.yaml`/`*.yml` under a directory;
//!    `--catalog REPO[@REF]`: that repository's root `catalog-info.yaml`,
//!    fetched into the same cache as `--repo` (a failed fetch uses the cache);
//! 2. `catalog-info.yaml` at the top of the playbook folder: a directory,
//!    confined to its enclosing Git worktree, or `--repo-path` inside
//!    `--repo` at `--ref`, read from the commit the playbooks came from.
//!
//! Without an entry file the tree is still returned, for CODEOWNERS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::load::ENTRY_FILE;
use super::tree::{self, ReadError, Tree};
use crate::source::auth::RemoteUrl;
use crate::source::{self, Spec, git};

/// How a playbook's path (as its provenance shows it) maps to a
/// repository-relative path, for CODEOWNERS.
#[derive(Clone, Debug, Default)]
pub enum PathMap {
    /// No repository: nothing maps.
    #[default]
    None,
    /// Paths on disk, relative to this canonical root.
    Dir(PathBuf),
    /// Paths already relative to the repository's root.
    Git,
}

impl PathMap {
    /// `path` relative to the repository root.
    pub fn relative(&self, path: &str) -> Option<String> {
        match self {
            PathMap::None => None,
            PathMap::Git => Some(path.trim_start_matches('/').to_string()),
            PathMap::Dir(root) => {
                let real = std::fs::canonicalize(path).ok()?;
                let rel = real.strip_prefix(root).ok()?;
                Some(rel.to_str()?.replace('\\', "/"))
            }
        }
    }
}

/// A tree, its entry files, where it came from (for messages), and warnings.
pub(super) type Found = (Tree, Vec<String>, String, Vec<String>);

/// The catalog beside the playbooks: their folder's `catalog-info.yaml`.
pub(super) fn beside_playbooks(spec: &Spec) -> anyhow::Result<Option<Found>> {
    match spec {
        Spec::Dir(paths) => {
            let Some(first) = paths.first() else {
                return Ok(None);
            };
            let dir = if first.is_dir() {
                first.clone()
            } else {
                first.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            let Ok((tree, rel)) = dir_tree(&dir) else {
                return Ok(None);
            };
            let entry = tree::resolve(&rel, ENTRY_FILE).unwrap_or_else(|| ENTRY_FILE.into());
            let origin = format!("`{}`", tree.shown(&entry));
            let entries = if dir.join(ENTRY_FILE).is_file() {
                vec![entry]
            } else {
                Vec::new()
            };
            Ok(Some((tree, entries, origin, Vec::new())))
        }
        Spec::Git(g) => {
            // The playbook source was fetched a moment ago: read the same
            // commit from the cache without asking the server again.
            let (repo, commit, shown, warnings) =
                open_git(&g.repo, g.git_ref.as_deref(), g.cache_dir.as_deref(), None)?;
            let base = g.repo_path.trim_matches('/');
            let base = if base == "." { "" } else { base };
            let entry = tree::resolve(base, ENTRY_FILE).unwrap_or_else(|| ENTRY_FILE.into());
            let tree = Tree::Git { repo, commit };
            let entries = if matches!(tree.read(&entry), Err(ReadError::Missing)) {
                Vec::new()
            } else {
                vec![entry.clone()]
            };
            let origin = format!("`{shown}` at {}: `{entry}`", git::short_id(commit));
            Ok(Some((tree, entries, origin, warnings)))
        }
    }
}

/// The catalog `--catalog` names.
pub(super) fn given_catalog(given: &str, playbooks: &Spec) -> anyhow::Result<Found> {
    let path = Path::new(given);
    if path.exists() {
        if path.is_dir() {
            let (tree, rel) = dir_tree(path)?;
            let files = tree.list_yaml(&rel).unwrap_or_default();
            if files.is_empty() {
                anyhow::bail!("no catalog files (`*.yaml`, `*.yml`) in `--catalog {given}`");
            }
            return Ok((tree, files, format!("`{given}`"), Vec::new()));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let (tree, rel) = dir_tree(dir.unwrap_or(Path::new(".")))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("`--catalog {given}` is not a UTF-8 file name"))?;
        let entry = tree::resolve(&rel, name).unwrap_or_else(|| name.to_string());
        return Ok((tree, vec![entry], format!("`{given}`"), Vec::new()));
    }
    let Some((repo_text, git_ref)) =
        split_repo_ref(given).filter(|(repo, _)| is_remote(repo) || Path::new(repo).exists())
    else {
        anyhow::bail!("`--catalog {given}`: no such file or directory");
    };
    let (cache_dir, fetch) = match playbooks {
        Spec::Git(g) => (g.cache_dir.clone(), (!g.offline).then_some(g.fetch_timeout)),
        Spec::Dir(_) => (None, Some(source::DEFAULT_FETCH_TIMEOUT)),
    };
    let (repo, commit, shown, warnings) =
        open_git(repo_text, git_ref, cache_dir.as_deref(), fetch)?;
    let tree = Tree::Git { repo, commit };
    if matches!(tree.read(ENTRY_FILE), Err(ReadError::Missing)) {
        anyhow::bail!(
            "`{shown}` has no `{ENTRY_FILE}` at its root at commit {}",
            git::short_id(commit)
        );
    }
    let origin = format!("`{shown}` at {}", git::short_id(commit));
    Ok((tree, vec![ENTRY_FILE.to_string()], origin, warnings))
}

/// `REPO@REF` split where the `@` cannot be a URL's user-info or an scp-like
/// address's user: after the host of a URL, after the `:` of `user@host:path`.
pub fn split_repo_ref(text: &str) -> Option<(&str, Option<&str>)> {
    let path_start = if let Some(i) = text.find("://") {
        text[i + 3..].find('/').map(|j| i + 3 + j)?
    } else if let Some(colon) = text.find(':')
        && text[..colon].contains('@')
    {
        colon
    } else if text.contains('/') || text.ends_with(".git") || text.contains(".git@") {
        0
    } else {
        return None;
    };
    match text.rfind('@').filter(|at| *at > path_start) {
        Some(at) if !text[at + 1..].is_empty() => Some((&text[..at], Some(&text[at + 1..]))),
        _ => Some((text, None)),
    }
}

/// Whether `repo` names a remote (a URL or `user@host:path`), not a local path.
fn is_remote(repo: &str) -> bool {
    repo.contains("://")
        || repo
            .find(':')
            .is_some_and(|colon| repo[..colon].contains('@'))
}

/// A directory tree confined to the Git worktree around `dir` (else `dir`
/// itself), and `dir`'s path inside it.
fn dir_tree(dir: &Path) -> anyhow::Result<(Tree, String)> {
    let real =
        std::fs::canonicalize(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    let root = real
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&real)
        .to_path_buf();
    let rel = real
        .strip_prefix(&root)
        .ok()
        .and_then(Path::to_str)
        .unwrap_or("")
        .replace('\\', "/");
    let ups = rel.split('/').filter(|p| !p.is_empty()).count();
    let mut shown = dir.to_path_buf();
    for _ in 0..ups {
        shown.push("..");
    }
    Ok((Tree::Dir { root, shown }, rel))
}

/// Opens the cache of `repo` at `git_ref`, fetching first when `fetch` gives
/// a timeout; a failed fetch falls back to the cache with a warning.
fn open_git(
    repo: &str,
    git_ref: Option<&str>,
    cache_dir: Option<&Path>,
    fetch: Option<Duration>,
) -> anyhow::Result<(git2::Repository, git2::Oid, String, Vec<String>)> {
    let remote = RemoteUrl::parse(repo)?;
    let root = source::cache_dir(cache_dir)?;
    let cache = git::Cache::of(&root, &remote);
    let shown = remote.display.clone();
    let mut warnings = Vec::new();
    if let Some(timeout) = fetch
        && let Err(e) = git::fetch(&cache, &remote, timeout)
    {
        warnings.push(format!(
            "cannot fetch the catalog `{shown}`: {}; using the cached copy",
            remote.scrub(&format!("{e:#}"))
        ));
    }
    let repo = cache
        .open()
        .filter(git::has_refs)
        .with_context(|| format!("nothing is cached for the catalog `{shown}`"))?;
    let resolved = git::resolve(&repo, git_ref, &shown)?;
    Ok((repo, resolved.commit, shown, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_and_ref_split_where_the_at_is_a_ref() {
        assert_eq!(
            split_repo_ref("https://user@git.example.com/org/catalog.git@v2"),
            Some(("https://user@git.example.com/org/catalog.git", Some("v2")))
        );
        assert_eq!(
            split_repo_ref("https://user@git.example.com/org/catalog.git"),
            Some(("https://user@git.example.com/org/catalog.git", None))
        );
        assert_eq!(
            split_repo_ref("git@github.com:org/catalog@feature/x"),
            Some(("git@github.com:org/catalog", Some("feature/x")))
        );
        assert_eq!(
            split_repo_ref("git@github.com:org/catalog"),
            Some(("git@github.com:org/catalog", None))
        );
        assert_eq!(
            split_repo_ref("/srv/catalog.git@main"),
            Some(("/srv/catalog.git", Some("main")))
        );
        assert_eq!(split_repo_ref("nothing-here"), None);
    }
}
