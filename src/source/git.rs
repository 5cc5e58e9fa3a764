//! The bare cache of a remote: where it lives, fetching into it under a
//! lock and a deadline, resolving refs, and reading playbooks from a
//! commit's tree (never a working tree, so a concurrent fetch can never show
//! half-updated files).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use git2::{AutotagOption, Direction, FetchOptions, Oid, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::auth::{Credentials, RemoteUrl};
use crate::diagnostic::Diagnostic;
use crate::playbook::Provenance;
use crate::playbook::load::{self, MAX_PLAYBOOK_BYTES, SourceFile};
use crate::yaml::Pos;

/// Branches and tags, force-updated: a force-pushed branch replaces the
/// cached one instead of failing the fetch.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Directory nesting followed inside `--repo-path` (as for directories).
const MAX_DEPTH: usize = 16;

/// One remote's cache: a bare repository, its lock file and its fetch stamp.
#[derive(Clone, Debug)]
pub struct Cache {
    /// The bare repository.
    pub repo: PathBuf,
    lock: PathBuf,
    stamp: PathBuf,
}

impl Cache {
    /// The cache of `remote` under `root`, keyed by a hash of the
    /// credential-free URL (so a token change keeps the cache).
    pub fn of(root: &Path, remote: &RemoteUrl) -> Cache {
        let key = hex::encode(Sha256::digest(remote.display.as_bytes()));
        let slug: String = remote
            .display
            .rsplit(['/', ':'])
            .find(|s| !s.is_empty())
            .unwrap_or("repo")
            .trim_end_matches(".git")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let base = format!("{slug}-{}", &key[..16]);
        Cache {
            repo: root.join(format!("{base}.git")),
            lock: root.join(format!("{base}.lock")),
            stamp: root.join(format!("{base}.fetched")),
        }
    }

    /// The cached repository, if a fetch ever created it.
    pub fn open(&self) -> Option<Repository> {
        Repository::open_bare(&self.repo).ok()
    }

    /// When the last fetch succeeded.
    pub fn last_fetch(&self) -> Option<SystemTime> {
        fs::metadata(&self.stamp).and_then(|m| m.modified()).ok()
    }
}

/// Whether the repository has any branch or tag to read from.
pub fn has_refs(repo: &Repository) -> bool {
    repo.references_glob("refs/*")
        .map(|mut refs| refs.next().is_some())
        .unwrap_or(false)
}

/// Fetches `remote` into `cache`, giving up after `timeout`.
///
/// libgit2 has no overall timeout, so the fetch runs on its own thread with
/// a deadline checked in its progress callbacks; if it still has not
/// finished by then (a server that accepted the connection and went quiet),
/// the thread is abandoned and its lock dies with the process.
pub fn fetch(cache: &Cache, remote: &RemoteUrl, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    set_network_timeouts(timeout);
    let (tx, rx) = mpsc::channel();
    let cache_t = cache.clone();
    let remote_t = remote.clone();
    std::thread::Builder::new()
        .name("irctl-fetch".into())
        .spawn(move || {
            let result = fetch_locked(&cache_t, &remote_t, deadline);
            let _ = tx.send(result);
        })
        .context("cannot start the fetch thread")?;
    let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(250);
    match rx.recv_timeout(wait) {
        Ok(result) => result,
        Err(_) => anyhow::bail!("timed out after {}", crate::duration::format(timeout)),
    }
}

/// Bounds connecting and each read on the socket (https and git://).
fn set_network_timeouts(timeout: Duration) {
    let ms = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    // SAFETY: libgit2 options are process-global; they are set here, before
    // the fetch thread starts, from the one thread that fetches.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
    }
}

/// Takes the cache's lock (waiting at most until `deadline`), then fetches.
fn fetch_locked(cache: &Cache, remote: &RemoteUrl, deadline: Instant) -> anyhow::Result<()> {
    if let Some(parent) = cache.repo.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create cache directory `{}`", parent.display()))?;
    }
    let _lock = lock(&cache.lock, deadline)?;
    remove_leftovers(&cache.repo);
    let repo = match Repository::open_bare(&cache.repo) {
        Ok(r) => r,
        Err(_) => Repository::init_bare(&cache.repo)
            .with_context(|| format!("cannot create the cache `{}`", cache.repo.display()))?,
    };
    let mut anon = repo
        .remote_anonymous(&remote.fetch)
        .map_err(|e| anyhow::anyhow!("{}", remote.scrub(e.message())))?;
    let scrub = |e: git2::Error| anyhow::anyhow!("{}", remote.scrub(e.message()));
    let mut conn = anon
        .connect_auth(Direction::Fetch, Some(callbacks(remote, deadline)), None)
        .map_err(scrub)?;
    let default_branch = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_string));
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(remote, deadline))
        .download_tags(AutotagOption::None);
    conn.remote()
        .download(&REFSPECS, Some(&mut opts))
        .map_err(scrub)?;
    drop(conn);
    anon.update_tips(
        None,
        git2::RemoteUpdateFlags::UPDATE_FETCHHEAD,
        AutotagOption::None,
        Some("irctl fetch"),
    )
    .map_err(scrub)?;
    // Branches deleted on the server go too, so "did you mean" stays honest.
    let _ = anon.prune(None);
    if let Some(branch) = default_branch {
        repo.set_head(&branch)
            .with_context(|| format!("cannot record the default branch `{branch}`"))?;
    }
    File::create(&cache.stamp)
        .with_context(|| format!("cannot write `{}`", cache.stamp.display()))?;
    Ok(())
}

/// Removes what an irctl killed mid-fetch (Ctrl-C, a deadline) left in the
/// cache: Git's `*.lock` files, which would block every later ref update,
/// and temporary packs. Only called while holding the cache lock, so no
/// live fetch owns them.
fn remove_leftovers(repo: &Path) {
    fn sweep(dir: &Path, depth: usize) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if depth < 8 {
                    sweep(&path, depth + 1);
                }
            } else if name.ends_with(".lock") || name.starts_with("tmp_pack_") {
                let _ = fs::remove_file(&path);
            }
        }
    }
    for top in [
        "HEAD.lock",
        "config.lock",
        "packed-refs.lock",
        "FETCH_HEAD.lock",
    ] {
        let _ = fs::remove_file(repo.join(top));
    }
    sweep(&repo.join("refs"), 0);
    sweep(&repo.join("objects/pack"), 7);
}

/// Credentials, and progress callbacks that abort once `deadline` passed.
fn callbacks(remote: &RemoteUrl, deadline: Instant) -> RemoteCallbacks<'static> {
    let mut creds = Credentials::new(remote);
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |url, user, allowed| creds.answer(url, user, allowed))
        .transfer_progress(move |_| Instant::now() < deadline)
        .sideband_progress(move |_| Instant::now() < deadline);
    cb
}

/// An exclusive OS lock on `path`, waited for until `deadline`: the kernel
/// releases it when the holder dies, so a killed irctl never blocks the next.
fn lock(path: &Path, deadline: Instant) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock `{}`", path.display()))?;
    let wait = deadline.saturating_duration_since(Instant::now());
    crate::lock::lock_within(&file, path, wait)
        .context("another irctl was still fetching into the cache")?;
    Ok(file)
}

/// A ref that names nothing in the repository.
#[derive(Debug, thiserror::Error)]
#[error("ref `{name}` not found in `{repo}`{}", help.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
pub struct UnknownRef {
    /// The ref asked for.
    pub name: String,
    /// The repository, as shown.
    pub repo: String,
    /// A suggestion or the list of branches and tags.
    pub help: Option<String>,
}

/// A resolved ref: the commit and the name it was reached by.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The commit.
    pub commit: Oid,
    /// The branch, tag or commit id it was reached by.
    pub name: String,
}

/// Resolves `name` (branch, tag, full ref or commit id), or the default
/// branch (the bare repository's HEAD) when `None`.
pub fn resolve(repo: &Repository, name: Option<&str>, shown: &str) -> anyhow::Result<Resolved> {
    let Some(name) = name else {
        let head = repo
            .find_reference("HEAD")
            .context("the cache has no HEAD")?;
        let branch = head
            .symbolic_target()
            .ok()
            .flatten()
            .map(|t| t.trim_start_matches("refs/heads/").to_string())
            .unwrap_or_else(|| "HEAD".to_string());
        let commit = head.peel_to_commit().map_err(|_| {
            anyhow::anyhow!("`{shown}` has no default branch `{branch}`; pick one with `--ref`")
        })?;
        return Ok(Resolved {
            commit: commit.id(),
            name: branch,
        });
    };
    for full in [
        format!("refs/heads/{name}"),
        format!("refs/tags/{name}"),
        name.to_string(),
    ] {
        if let Ok(r) = repo.find_reference(&full)
            && let Ok(c) = r.peel_to_commit()
        {
            return Ok(Resolved {
                commit: c.id(),
                name: name.to_string(),
            });
        }
    }
    let hex = name.len() >= 4 && name.len() <= 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
    if hex
        && let Ok(obj) = repo.revparse_single(name)
        && let Ok(c) = obj.peel_to_commit()
    {
        return Ok(Resolved {
            commit: c.id(),
            name: name.to_string(),
        });
    }
    Err(UnknownRef {
        name: name.to_string(),
        repo: shown.to_string(),
        help: suggest(repo, name),
    }
    .into())
}

/// "did you mean" among branches and tags, else the list of them.
pub fn suggest(repo: &Repository, name: &str) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(refs) = repo.references_glob("refs/*") {
        for r in refs.flatten() {
            if let Ok(n) = r.name() {
                if let Some(b) = n.strip_prefix("refs/heads/") {
                    names.push(b.to_string());
                } else if let Some(t) = n.strip_prefix("refs/tags/") {
                    names.push(t.to_string());
                }
            }
        }
    }
    names.sort();
    if let Some(hint) = crate::diagnostic::did_you_mean(name, names.iter().map(String::as_str)) {
        return Some(hint);
    }
    if names.is_empty() {
        return None;
    }
    let shown: Vec<String> = names.iter().take(10).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 10 { ", …" } else { "" };
    Some(format!("branches and tags: {}{more}", shown.join(", ")))
}

/// Whether `name` is a full commit id present in `repo` (a pin that no
/// fetch can change).
pub fn has_commit(repo: &Repository, name: &str) -> bool {
    name.len() == 40
        && Oid::from_str(name)
            .ok()
            .is_some_and(|oid| repo.find_commit(oid).is_ok())
}

/// Reads the playbook files under `dir` (repository-relative, `/`-separated;
/// empty for the root) at `commit`.
pub fn read_tree(
    repo: &Repository,
    commit: Oid,
    dir: &str,
    provenance: &Provenance,
) -> anyhow::Result<Vec<SourceFile>> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("commit {commit} is not in the cache"))?;
    let root = commit.tree().context("cannot read the commit's tree")?;
    let short = short_id(commit.id());
    let tree = if dir.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(dir)).map_err(|_| {
            anyhow::anyhow!("`{dir}` does not exist at commit {short}; set `--repo-path`")
        })?;
        entry
            .to_object(repo)
            .ok()
            .and_then(|o| o.into_tree().ok())
            .ok_or_else(|| {
                anyhow::anyhow!("`{dir}` is not a directory at commit {short}; set `--repo-path`")
            })?
    };
    let odb = repo
        .odb()
        .context("cannot open the repository's object database")?;
    let mut out = Vec::new();
    walk(repo, &odb, &tree, dir, 0, provenance, &mut out)?;
    if out.is_empty() {
        let shown = if dir.is_empty() { "/" } else { dir };
        anyhow::bail!("no playbooks (`*.yaml`, `*.yml`) found in `{shown}` at commit {short}");
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    tree: &git2::Tree<'_>,
    prefix: &str,
    depth: usize,
    provenance: &Provenance,
    out: &mut Vec<SourceFile>,
) -> anyhow::Result<()> {
    for entry in tree.iter() {
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
                let sub = repo
                    .find_tree(entry.id())
                    .with_context(|| format!("cannot read `{path}`"))?;
                walk(repo, odb, &sub, &path, depth + 1, provenance, out)?;
            }
            // Symlinks (0o120000) point outside the commit's content.
            Some(git2::ObjectType::Blob)
                if entry.filemode() != 0o120000
                    && load::is_playbook_file(Path::new(name))
                    && !(depth == 0 && name == crate::catalog::ENTRY_FILE) =>
            {
                let bytes = read_blob(repo, odb, entry.id(), &path)
                    .map_err(|msg| Diagnostic::error(&path, Pos::UNKNOWN, "yaml-syntax", msg));
                out.push(SourceFile {
                    path,
                    bytes,
                    // The tree entry is the blob id: no need to hash the bytes.
                    provenance: Provenance {
                        blob: entry.id().to_string(),
                        ..provenance.clone()
                    },
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The content of the playbook blob `id` at `path`. Its size comes from the
/// object's header first, so a huge file is refused without being
/// inflated into memory.
fn read_blob(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    id: Oid,
    path: &str,
) -> Result<Vec<u8>, String> {
    let (size, _) = odb
        .read_header(id)
        .map_err(|e| format!("cannot read `{path}`: {}", e.message()))?;
    if size as u64 > MAX_PLAYBOOK_BYTES {
        return Err(format!(
            "`{path}` is {size} bytes, over the {} MiB limit for a playbook",
            MAX_PLAYBOOK_BYTES / 1024 / 1024
        ));
    }
    repo.find_blob(id)
        .map(|b| b.content().to_vec())
        .map_err(|e| format!("cannot read `{path}`: {}", e.message()))
}

/// The first 8 hex digits, as `irctl list` shows commits.
pub fn short_id(oid: Oid) -> String {
    oid.to_string()[..8].to_string()
}

/// "3 hours ago" for a moment in the past.
pub fn age(then: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(then)
        .unwrap_or_default()
        .as_secs();
    let (n, unit) = match secs {
        0..60 => return "just now".to_string(),
        60..3600 => (secs / 60, "minute"),
        3600..86400 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The commit's time as a [`SystemTime`].
pub fn commit_time(repo: &Repository, oid: Oid) -> Option<SystemTime> {
    let secs = repo.find_commit(oid).ok()?.time().seconds();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}
