//! Finding and reading playbook files from directories.
//!
//! Files are read whole (they are small), bounded in size, and handed to
//! [`super::validate`]; a file that cannot be read becomes a finding for that
//! file, while a path that does not exist is an input error for the command.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::yaml::Pos;

use super::{PlaybookSet, Provenance, validate};

/// Largest playbook file read; real playbooks are a few kilobytes.
pub const MAX_PLAYBOOK_BYTES: u64 = 2 * 1024 * 1024;

/// Directory nesting followed when looking for playbooks.
const MAX_DEPTH: usize = 16;

/// Why playbooks could not be loaded at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist.
    #[error("playbook path `{0}` does not exist")]
    NotFound(String),
    /// A directory without any `*.yaml`/`*.yml` file.
    #[error("no playbooks (`*.yaml`, `*.yml`) found in `{0}`")]
    NoPlaybooks(String),
    /// Listing a directory failed.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./")
        .map(str::to_string)
        .unwrap_or_else(|| s.into_owned())
}

/// Whether a file name is a playbook (also used for files in a Git tree).
pub fn is_playbook_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    // `NAME.test.yaml` files hold playbook tests, not playbooks.
    yaml && !name.ends_with(".test.yaml") && !name.ends_with(".test.yml") && !name.starts_with('.')
}

fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    // Each real directory once: a symlink back up the tree (`x -> .`) would
    // otherwise multiply the walk by its fan-out at every level.
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(real) {
        return Ok(());
    }
    let entries = fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: display(dir),
        source,
    })?;
    let mut paths: Vec<(PathBuf, bool)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: display(dir),
            source,
        })?;
        // The directory entry's own type saves a stat per file; only a
        // symlink needs following to know what it points at.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => entry.path().is_dir(),
        };
        paths.push((entry.path(), is_dir));
    }
    paths.sort();
    for (path, is_dir) in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if is_dir {
            // The top `sources/` folder holds payload mappings, not playbooks.
            if depth < MAX_DEPTH && !(depth == 0 && path.file_name() == Some(MAPPINGS.as_ref())) {
                walk(&path, depth + 1, seen, out)?;
            }
        } else if is_playbook_file(&path)
            && !is_teams_file(dir, depth, &path)
            // The top `catalog-info.yaml` is the service catalog's entry file.
            && !(depth == 0 && path.file_name() == Some(crate::catalog::ENTRY_FILE.as_ref()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `path`, met `depth` folders below the playbook folder in `dir`,
/// is the teams file ([`crate::teams::FILES`]), which is not a playbook.
fn is_teams_file(dir: &Path, depth: usize, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let rel = match depth {
        0 => name.to_string(),
        1 => match dir.file_name().and_then(|n| n.to_str()) {
            Some(parent) => format!("{parent}/{name}"),
            None => return false,
        },
        _ => return false,
    };
    crate::teams::is_teams_file(&rel)
}

/// Lists the playbook files under `paths` (directories are searched, files taken as given).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound(display(path)),
            _ => LoadError::Io {
                path: display(path),
                source: e,
            },
        })?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, 0, &mut HashSet::new(), &mut files)?;
            if files.len() == before {
                return Err(LoadError::NoPlaybooks(display(path)));
            }
        } else if !is_mapping_file(path) {
            files.push(path.clone());
        }
    }
    files.dedup();
    Ok(files)
}

/// Folder of payload mappings at the top of a playbook directory.
const MAPPINGS: &str = crate::incident::mapping::DIR;

/// Whether a file named on its own is a payload mapping (in a `sources/` folder).
fn is_mapping_file(path: &Path) -> bool {
    path.parent().and_then(Path::file_name) == Some(MAPPINGS.as_ref())
}

/// Reads the payload mapping files of `paths`: the `*.yaml`/`*.yml` files
/// of each directory's `sources/` folder, and files named on their own
/// from a `sources/` folder. A folder that cannot be listed has none.
pub fn read_mappings(paths: &[PathBuf]) -> Vec<SourceFile> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let Ok(entries) = fs::read_dir(path.join(MAPPINGS)) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_playbook_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if is_mapping_file(path) {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|p| SourceFile {
            path: display(&p),
            bytes: read_bounded(&p),
            provenance: Provenance::default(),
        })
        .collect()
}

/// Reads one file, bounded; problems become a finding for that file.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let file_name = display(path);
    let fail = |msg: String| Diagnostic::error(&file_name, Pos::UNKNOWN, "yaml-syntax", msg);
    let meta = fs::metadata(path).map_err(|e| fail(format!("cannot read `{file_name}`: {e}")))?;
    if meta.is_dir() {
        return Err(fail(format!(
            "`{file_name}` is a directory, not a playbook file"
        )));
    }
    if meta.len() > MAX_PLAYBOOK_BYTES {
        return Err(fail(format!(
            "`{file_name}` is {} bytes, over the {} MiB limit for a playbook",
            meta.len(),
            MAX_PLAYBOOK_BYTES / 1024 / 1024
        )));
    }
    let file = fs::File::open(path).map_err(|e| fail(format!("cannot read `{file_name}`: {e}")))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLAYBOOK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read `{file_name}`: {e}")))?;
    if bytes.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(fail(format!(
            "`{file_name}` is over the {} MiB limit for a playbook",
            MAX_PLAYBOOK_BYTES / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// The Git blob id of `bytes`, so a run records exactly which file content ran.
///
/// Computed here rather than with git2: the first git2 call initialises
/// libgit2's TLS stack, which loads the system's CA bundle (tens of
/// milliseconds) — a cost every `irctl run` would pay for a hash.
pub fn blob_id(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// `src` with its blob id in its provenance, computed when the reader did
/// not know it.
pub(crate) fn with_blob_id(mut src: SourceFile) -> SourceFile {
    if let (Ok(bytes), true) = (&src.bytes, src.provenance.blob.is_empty()) {
        src.provenance.blob = blob_id(bytes);
    }
    src
}

/// One file's bytes with where it came from; the unit [`from_sources`] checks.
#[derive(Clone)]
pub struct SourceFile {
    /// Path as shown to users.
    pub path: String,
    /// The content, or the finding that explains why there is none.
    pub bytes: Result<Vec<u8>, Diagnostic>,
    /// Provenance without `path` (filled in here); `blob` too unless the
    /// reader already knows it (a Git tree entry, the summary index).
    pub provenance: Provenance,
}

/// Loads and validates the playbooks under `paths`.
pub fn load_paths(paths: &[PathBuf]) -> Result<PlaybookSet, LoadError> {
    Ok(from_sources(read_sources(paths)?))
}

/// Reads the playbook files under `paths`, on every core (10,000 small files
/// are mostly system-call latency).
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<SourceFile>, LoadError> {
    let files = discover(paths)?;
    Ok(par_map(files, |p| SourceFile {
        path: display(&p),
        bytes: read_bounded(&p),
        provenance: Provenance::default(),
    }))
}

/// What checking one file produced.
pub(crate) struct Checked {
    pub(crate) path: String,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) playbook: Option<super::Playbook>,
    pub(crate) text: Option<String>,
}

/// Maps `f` over `items` on up to 8 threads, keeping their order.
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if workers <= 1 || items.len() < 16 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(workers);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        chunks.push(rest);
        rest = tail;
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            // A worker that panicked must not make its items vanish from
            // the result (a "valid" set with fewer files).
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Checks one file: UTF-8, then [`validate::check_file`].
pub(crate) fn check_source(src: SourceFile) -> Checked {
    let src = with_blob_id(src);
    let mut out = Checked {
        path: src.path.clone(),
        diagnostics: Vec::new(),
        playbook: None,
        text: None,
    };
    let bytes = match src.bytes {
        Ok(b) => b,
        Err(d) => {
            out.diagnostics.push(d);
            return out;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = &e.as_bytes()[..offset];
            let line = valid.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let col = valid.iter().rev().take_while(|&&b| b != b'\n').count() as u32 + 1;
            out.diagnostics.push(
                Diagnostic::error(
                    &src.path,
                    Pos::new(line, col),
                    "yaml-syntax",
                    "file is not valid UTF-8",
                )
                .with_help("save the playbook as UTF-8"),
            );
            return out;
        }
    };
    let provenance = Provenance {
        path: src.path.clone(),
        ..src.provenance
    };
    let (playbook, diags) = validate::check_file(&src.path, &text, provenance);
    out.diagnostics = diags;
    out.playbook = playbook;
    out.text = Some(text);
    out
}

/// Validates already-read files (from disk or from a Git tree) into a set.
/// Files are independent, so they are checked on every core; results keep file order.
pub fn from_sources(sources: Vec<SourceFile>) -> PlaybookSet {
    from_checked(par_map(sources, check_source))
}

/// The set of files already checked one by one (in file order).
pub(crate) fn from_checked(checked: Vec<Checked>) -> PlaybookSet {
    let mut set = PlaybookSet::default();
    for c in checked {
        set.files.push(c.path.clone());
        set.diagnostics.extend(c.diagnostics);
        if let Some(p) = c.playbook {
            set.playbooks.push(p);
        }
        if let Some(text) = c.text {
            set.sources.insert(c.path, text);
        }
    }
    set.diagnostics
        .extend(validate::check_set(&mut set.playbooks));
    set
}

#[cfg(test)]
mod tests {
    #[test]
    fn blob_ids_are_gits() {
        // `git hash-object` of an empty file and of "hello\n".
        assert_eq!(
            super::blob_id(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            super::blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
