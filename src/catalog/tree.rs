//! The files a catalog is read from: a directory on disk confined to its
//! repository (or to itself), or a Git commit's tree — never a working tree
//! of the cache, so a concurrent fetch cannot show half-updated files.
//!
//! Paths inside a [`Tree`] are relative to its root, `/`-separated and
//! normalised (no `.`, no `..`). Names come from files in a repository and
//! are untrusted: a path that climbs out of the root, an absolute path, or
//! a symlink leading outside is refused, and every read is bounded.

use std::fs;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use git2::{Oid, Repository};

/// Largest catalog (or CODEOWNERS) file read.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Directory nesting followed when listing.
const MAX_DEPTH: usize = 16;
/// Files listed at most from one directory walk.
pub const MAX_LISTED: usize = 2_000;

/// Where catalog files are read from.
pub enum Tree {
    /// A directory on disk.
    Dir {
        /// The root, canonical: nothing outside it is read.
        root: PathBuf,
        /// The root as users should see it (relative when they gave it so).
        shown: PathBuf,
    },
    /// A commit of a Git repository.
    Git {
        /// The (cached, bare) repository.
        repo: Repository,
        /// The commit read.
        commit: Oid,
    },
}

/// Why a file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No such file.
    Missing,
    /// Anything else, as a message naming the file.
    Other(String),
}

impl Tree {
    /// A file's path as users see it.
    pub fn shown(&self, rel: &str) -> String {
        match self {
            Tree::Dir { shown, .. } => lexical_join(shown, rel),
            Tree::Git { .. } => rel.to_string(),
        }
    }

    /// Reads `rel`, bounded.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, ReadError> {
        let shown = self.shown(rel);
        match self {
            Tree::Dir { root, .. } => {
                let path = root.join(rel);
                let real = match fs::canonicalize(&path) {
                    Ok(p) => p,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(ReadError::Missing);
                    }
                    Err(e) => return Err(ReadError::Other(format!("cannot read `{shown}`: {e}"))),
                };
                if !real.starts_with(root) {
                    return Err(ReadError::Other(format!(
                        "`{shown}` leads outside `{}` (a symlink?); not read",
                        self.shown("")
                    )));
                }
                if real.is_dir() {
                    return Err(ReadError::Other(format!(
                        "`{shown}` is a directory, not a file"
                    )));
                }
                let file = fs::File::open(&real)
                    .map_err(|e| ReadError::Other(format!("cannot read `{shown}`: {e}")))?;
                let mut bytes = Vec::new();
                file.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| ReadError::Other(format!("cannot read `{shown}`: {e}")))?;
                if bytes.len() as u64 > MAX_FILE_BYTES {
                    return Err(ReadError::Other(too_big(&shown)));
                }
                Ok(bytes)
            }
            Tree::Git { repo, commit } => {
                let fail = |e: git2::Error| {
                    ReadError::Other(format!("cannot read `{shown}`: {}", e.message()))
                };
                let tree = repo
                    .find_commit(*commit)
                    .and_then(|c| c.tree())
                    .map_err(fail)?;
                let entry = match tree.get_path(Path::new(rel)) {
                    Ok(e) => e,
                    Err(e) if e.code() == git2::ErrorCode::NotFound => {
                        return Err(ReadError::Missing);
                    }
                    Err(e) => return Err(fail(e)),
                };
                if entry.kind() != Some(git2::ObjectType::Blob) || entry.filemode() == 0o120000 {
                    return Err(ReadError::Other(format!(
                        "`{shown}` is not a regular file at commit {}",
                        crate::source::git::short_id(*commit)
                    )));
                }
                let odb = repo.odb().map_err(fail)?;
                let (size, _) = odb.read_header(entry.id()).map_err(fail)?;
                if size as u64 > MAX_FILE_BYTES {
                    return Err(ReadError::Other(too_big(&shown)));
                }
                repo.find_blob(entry.id())
                    .map(|b| b.content().to_vec())
                    .map_err(fail)
            }
        }
    }

    /// The `*.yaml`/`*.yml` files under `dir` (recursively, hidden entries
    /// skipped, sorted), at most [`MAX_LISTED`]; `None` when `dir` is not a directory.
    pub fn list_yaml(&self, dir: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        match self {
            Tree::Dir { root, .. } => {
                let start = root.join(dir);
                let real = fs::canonicalize(&start).ok()?;
                if !real.is_dir() || !real.starts_with(root) {
                    return None;
                }
                walk_dir(root, &real, 0, &mut out);
            }
            Tree::Git { repo, commit } => {
                let tree = repo.find_commit(*commit).and_then(|c| c.tree()).ok()?;
                let sub = if dir.is_empty() {
                    tree
                } else {
                    let entry = tree.get_path(Path::new(dir)).ok()?;
                    repo.find_tree(entry.id()).ok()?
                };
                walk_git(repo, &sub, dir, 0, &mut out);
            }
        }
        out.sort();
        Some(out)
    }
}

fn too_big(shown: &str) -> String {
    format!(
        "`{shown}` is over the {} MiB limit for a catalog file",
        MAX_FILE_BYTES / 1024 / 1024
    )
}

fn is_yaml(name: &str) -> bool {
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.starts_with('.')
}

fn walk_dir(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if out.len() >= MAX_LISTED {
            return;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Symlinks are followed only when they stay inside the root.
        let Ok(real) = fs::canonicalize(&path) else {
            continue;
        };
        if !real.starts_with(root) {
            continue;
        }
        if real.is_dir() {
            if depth < MAX_DEPTH {
                walk_dir(root, &path, depth + 1, out);
            }
        } else if is_yaml(name)
            && let Ok(rel) = path.strip_prefix(root)
            && let Some(rel) = rel.to_str()
        {
            out.push(rel.replace('\\', "/"));
        }
    }
}

fn walk_git(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    prefix: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    for entry in tree.iter() {
        if out.len() >= MAX_LISTED {
            return;
        }
        let Ok(name) = entry.name() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        match entry.kind() {
            Some(git2::ObjectType::Tree) if depth < MAX_DEPTH => {
                if let Ok(sub) = repo.find_tree(entry.id()) {
                    walk_git(repo, &sub, &path, depth + 1, out);
                }
            }
            Some(git2::ObjectType::Blob) if entry.filemode() != 0o120000 && is_yaml(name) => {
                out.push(path)
            }
            _ => {}
        }
    }
}

/// `rel` resolved against the directory `base` (both root-relative):
/// `None` when it is absolute or climbs above the root.
pub fn resolve(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The directory part of a root-relative path (`""` at the root).
pub fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// `base` joined with `rel`, `..` folded lexically where `base` allows, for display.
pub fn lexical_join(base: &Path, rel: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut absolute = false;
    for c in base.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..".into());
                }
            }
            other => out.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            if out.last().is_some_and(|l| l != "..") {
                out.pop();
            } else {
                out.push("..".into());
            }
        } else {
            out.push(part.to_string());
        }
    }
    let joined = out.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_the_root() {
        assert_eq!(
            resolve("playbooks", "../examples/catalog/org.yaml").as_deref(),
            Some("examples/catalog/org.yaml")
        );
        assert_eq!(resolve("", "./a/./b.yaml").as_deref(), Some("a/b.yaml"));
        assert_eq!(resolve("playbooks", "../../etc/passwd"), None);
        assert_eq!(resolve("", "/etc/passwd"), None);
        assert_eq!(resolve("a", "..\\..\\x"), None);
    }

    #[test]
    fn lexical_join_folds_parents() {
        assert_eq!(
            lexical_join(Path::new("playbooks/.."), "examples/org.yaml"),
            "examples/org.yaml"
        );
        assert_eq!(
            lexical_join(Path::new("."), "catalog-info.yaml"),
            "catalog-info.yaml"
        );
        assert_eq!(
            lexical_join(Path::new("/srv/repo/playbooks/.."), "x.yaml"),
            "/srv/repo/x.yaml"
        );
        assert_eq!(
            lexical_join(Path::new("../repo"), "a.yaml"),
            "../repo/a.yaml"
        );
        assert_eq!(lexical_join(Path::new(""), ""), ".");
    }
}
