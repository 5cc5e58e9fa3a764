//! Where playbooks come from: a directory, or a Git repository at a ref.
//!
//! [`read`] turns a [`Spec`] into the files of a [`Read`], which
//! [`Read::load`] checks into a [`Loaded`] set whose playbooks carry
//! their [`Provenance`](crate::playbook::Provenance). A Git source is read
//! from a bare cache ([`git`]) that is fetched first — offline-first: when
//! the fetch fails, the cached commit is used and a warning says so. A
//! directory inside a Git worktree records the worktree's HEAD and whether
//! each file differs from it. [`Loaded`] also answers the Git questions of
//! `irctl history` and `irctl validate --changed-since` ([`history`]).

pub mod auth;
pub mod git;
pub mod history;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use git2::{Oid, Repository};

use crate::diagnostic::Diagnostic;
use crate::incident::mapping::{self, Mapping};
use crate::playbook::load;
use crate::playbook::{PlaybookSet, Provenance};
use auth::RemoteUrl;

/// Fetch bound when none is given.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A Git source, as the flags describe it.
#[derive(Clone, Debug)]
pub struct GitSpec {
    /// `--repo`: a URL, scp-like address or local path.
    pub repo: String,
    /// `--ref`: branch, tag or commit; `None` is the remote's default branch.
    pub git_ref: Option<String>,
    /// `--repo-path`: the playbook folder inside the repository.
    pub repo_path: String,
    /// `--cache-dir`; `None` is `$XDG_CACHE_HOME/irctl`.
    pub cache_dir: Option<PathBuf>,
    /// `--offline`: use the cache without fetching.
    pub offline: bool,
    /// `--fetch-timeout`.
    pub fetch_timeout: Duration,
    /// Read this commit, recorded as reached through `git_ref` (what
    /// `irctl serve` passes so a run uses the commit it started with).
    pub pin_commit: Option<String>,
}

/// Where to load playbooks from.
#[derive(Clone, Debug)]
pub enum Spec {
    /// Files and directories on disk.
    Dir(Vec<PathBuf>),
    /// A Git repository at a ref.
    Git(GitSpec),
}

/// The Git repository behind a loaded set, for history and diffs.
enum Origin {
    /// Plain files outside any repository.
    Plain,
    /// Files in a worktree: paths map to the repository via `workdir`.
    Worktree { repo: Repository, workdir: PathBuf },
    /// A commit in the cache of a remote.
    Git {
        repo: Repository,
        commit: Oid,
        remote: RemoteUrl,
    },
}

/// A loaded playbook set, the warnings to show, and where it came from.
pub struct Loaded {
    /// The playbooks and findings.
    pub set: PlaybookSet,
    /// Things the user must know, e.g. that a fetch failed and the cache was used.
    pub warnings: Vec<String>,
    /// The teams file's teams (`teams.yaml`), when there is one and it checks cleanly.
    pub teams: Option<crate::teams::Teams>,
    origin: Origin,
}

/// Playbook files read from a source but not yet checked: `match` and `run`
/// summarise them ([`crate::playbook::index`]) and check only the chosen
/// ones; everything else checks them all ([`Read::load`]).
pub struct Read {
    /// The files, with Git provenance when read from a repository.
    pub sources: Vec<load::SourceFile>,
    /// The payload mapping files (`sources/*.yaml` at the top of the
    /// playbook folder), which are not playbooks.
    pub mappings: Vec<load::SourceFile>,
    /// Things the user must know, e.g. that a fetch failed and the cache was used.
    pub warnings: Vec<String>,
    /// The teams files found (`teams.yaml`, `catalog/teams.yaml`), which are not playbooks.
    pub teams: Vec<load::SourceFile>,
    /// `None` for a directory until [`Read::load`] or [`Read::stamp`] looks
    /// for a worktree: opening a repository costs libgit2's start-up, which
    /// `irctl match` does not need to pay.
    origin: Option<Origin>,
    dir: Option<PathBuf>,
}

/// Reads the playbook files `spec` names, fetching a Git source first.
pub fn read(spec: &Spec) -> anyhow::Result<Read> {
    match spec {
        Spec::Dir(paths) => Ok(Read {
            sources: load::read_sources(paths)?,
            mappings: load::read_mappings(paths),
            teams: paths
                .first()
                .filter(|p| p.is_dir())
                .map(|p| crate::teams::find_in_dir(p))
                .unwrap_or_default(),
            warnings: Vec::new(),
            origin: None,
            dir: paths.first().cloned(),
        }),
        Spec::Git(git) => read_git(git),
    }
}

impl Read {
    /// One line naming a Git source, e.g. `https://host/repo` at `3f2a9c1d`.
    pub fn describe(&self) -> Option<String> {
        describe(self.origin.as_ref()?)
    }

    fn origin(&mut self) -> &Origin {
        let dir = self.dir.take();
        self.origin
            .get_or_insert_with(|| match dir.as_deref().and_then(worktree_of) {
                Some((repo, workdir)) => Origin::Worktree { repo, workdir },
                None => Origin::Plain,
            })
    }

    /// Records, in playbooks loaded from a worktree, its HEAD and whether
    /// each file differs from it (a Git source's provenance is already set).
    pub fn stamp(&mut self, set: &mut PlaybookSet) {
        if let Origin::Worktree { repo, workdir } = self.origin() {
            stamp_worktree(set, repo, workdir);
        }
    }

    /// The payload mappings that check cleanly, and the files of those that do not.
    pub fn mappings(&self) -> (Vec<Mapping>, Vec<String>) {
        let mut good = Vec::new();
        let mut broken = Vec::new();
        for src in &self.mappings {
            match check_mapping(src) {
                (Some(m), diags, _) if !diags.iter().any(|d| d.is_error()) => good.push(m),
                _ => broken.push(src.path.clone()),
            }
        }
        (good, broken)
    }

    /// The teams, and the teams file's findings and text.
    pub fn teams(&self) -> (Option<crate::teams::Teams>, Vec<Diagnostic>, Option<String>) {
        crate::teams::load(&self.teams)
    }

    /// Binds `set`'s `notify: { team }` steps to the teams file, with its findings.
    pub fn bind_teams(&self, set: &mut PlaybookSet) -> Option<crate::teams::Teams> {
        let (teams, diags, text) = self.teams();
        if let Some(first) = self.teams.first() {
            set.files.push(first.path.clone());
            if let Some(text) = text {
                set.sources.insert(first.path.clone(), text);
            }
        }
        set.diagnostics.extend(diags);
        let found = self.teams.first().map(|f| f.path.as_str());
        crate::teams::bind(set, teams.as_ref(), found);
        teams
    }

    /// Checks every file into a set, the payload mappings and teams file included.
    pub fn load(mut self) -> Loaded {
        let mut set = load::from_sources(std::mem::take(&mut self.sources));
        let teams = self.bind_teams(&mut set);
        for src in &self.mappings {
            let (_, diags, text) = check_mapping(src);
            set.files.push(src.path.clone());
            set.diagnostics.extend(diags);
            if let Some(text) = text {
                set.sources.insert(src.path.clone(), text);
            }
        }
        self.stamp(&mut set);
        let origin = match self.origin.take() {
            Some(o) => o,
            None => Origin::Plain,
        };
        Loaded {
            set,
            warnings: self.warnings,
            teams,
            origin,
        }
    }
}

/// Checks one mapping file: the mapping, the findings, and its text when it is UTF-8.
fn check_mapping(src: &load::SourceFile) -> (Option<Mapping>, Vec<Diagnostic>, Option<String>) {
    let bytes = match &src.bytes {
        Ok(b) => b,
        Err(d) => return (None, vec![d.clone()], None),
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let (m, diags) = mapping::check(&src.path, text);
            (m, diags, Some(text.to_string()))
        }
        Err(_) => (
            None,
            vec![Diagnostic::error(
                &src.path,
                crate::yaml::Pos::UNKNOWN,
                "yaml-syntax",
                "file is not valid UTF-8",
            )],
            None,
        ),
    }
}

fn describe(origin: &Origin) -> Option<String> {
    match origin {
        Origin::Git { commit, remote, .. } => Some(format!(
            "`{}` at {}",
            remote.display,
            git::short_id(*commit)
        )),
        _ => None,
    }
}

/// The non-bare repository containing `path`, and its working directory.
fn worktree_of(path: &Path) -> Option<(Repository, PathBuf)> {
    let start = if path.is_dir() { path } else { path.parent()? };
    let start = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start
    };
    // Look for `.git` before asking libgit2: its first call loads the
    // system's CA bundle (~20 ms), which a directory outside any repository
    // (a playbook folder deployed by config management) should not pay.
    let abs = start.canonicalize().ok()?;
    if !abs.ancestors().any(|d| d.join(".git").exists()) {
        return None;
    }
    let repo = Repository::discover(start).ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    Some((repo, workdir))
}

/// `path` (as given on the command line) relative to `workdir`, `/`-separated.
fn relative_to(workdir: &Path, path: &str) -> Option<String> {
    let abs = Path::new(path).canonicalize().ok()?;
    let rel = abs.strip_prefix(workdir).ok()?;
    Some(rel.to_str()?.replace('\\', "/"))
}

/// Records the worktree's HEAD in each playbook, and whether its file
/// differs from the HEAD version (comparing blob ids: no status scan).
fn stamp_worktree(set: &mut PlaybookSet, repo: &Repository, workdir: &Path) {
    let head = repo.head().ok();
    let commit = head.as_ref().and_then(|h| h.peel_to_commit().ok());
    let tree = commit.as_ref().and_then(|c| c.tree().ok());
    let branch = head
        .as_ref()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_string));
    let shown = workdir.to_string_lossy().into_owned();
    // One lookup per directory, not per file: a tree of 1,000 playbooks
    // would otherwise be read 1,000 times.
    let mut dirs: HashMap<String, Option<git2::Tree<'_>>> = HashMap::new();
    for p in &mut set.playbooks {
        let Some(rel) = relative_to(workdir, &p.provenance.path) else {
            continue;
        };
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        let dir_tree = dirs.entry(dir.to_string()).or_insert_with(|| {
            let root = tree.as_ref()?;
            if dir.is_empty() {
                return Some(root.clone());
            }
            root.get_path(Path::new(dir))
                .ok()?
                .to_object(repo)
                .ok()?
                .into_tree()
                .ok()
        });
        let committed = dir_tree
            .as_ref()
            .and_then(|t| t.get_name(name))
            .map(|e| e.id().to_string());
        p.provenance.repo = Some(shown.clone());
        p.provenance.git_ref = branch.clone();
        p.provenance.commit = commit.as_ref().map(|c| c.id().to_string());
        p.provenance.dirty = Some(committed.as_deref() != Some(p.provenance.blob.as_str()));
    }
}

/// The user's cache directory for irctl.
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    dirs::cache_dir()
        .map(|d| d.join("irctl"))
        .context("no cache directory (set `XDG_CACHE_HOME` or `HOME`, or pass `--cache-dir`)")
}

/// `--cache-dir` when given, else [`default_cache_dir`]: Git clones and the
/// playbook summary index live side by side there.
pub fn cache_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(d) => Ok(d.to_path_buf()),
        None => default_cache_dir(),
    }
}

fn read_git(spec: &GitSpec) -> anyhow::Result<Read> {
    let remote = RemoteUrl::parse(&spec.repo)?;
    let root = cache_dir(spec.cache_dir.as_deref())?;
    let cache = git::Cache::of(&root, &remote);
    let shown = &remote.display;
    let git_ref = spec.git_ref.as_deref();
    // A full commit id already cached cannot change: no need to ask the server.
    let pinned = spec
        .pin_commit
        .as_deref()
        .or(git_ref)
        .is_some_and(|r| cache.open().is_some_and(|repo| git::has_commit(&repo, r)));
    let fetch_error = if spec.offline || pinned {
        None
    } else {
        git::fetch(&cache, &remote, spec.fetch_timeout).err()
    };
    let fetch_error = fetch_error.map(|e| remote.scrub(&format!("{e:#}")));
    let repo = match cache.open().filter(git::has_refs) {
        Some(repo) => repo,
        None => match &fetch_error {
            Some(e) => anyhow::bail!(
                "cannot fetch playbooks from `{shown}` (host `{}`) and nothing is cached: {e}",
                remote.host
            ),
            None if spec.offline => anyhow::bail!(
                "`--offline`, but nothing is cached for `{shown}` in `{}`; run once without `--offline` while `{}` is reachable",
                root.display(),
                remote.host
            ),
            None => anyhow::bail!("`{shown}` has no branches or tags"),
        },
    };
    let resolved = match spec.pin_commit.as_deref() {
        Some(pin) => pinned_at(&repo, git_ref, pin, shown)?,
        None => git::resolve(&repo, git_ref, shown).map_err(|e| match &fetch_error {
            Some(f) => anyhow::anyhow!(
                "{e}\n  (only cached branches and tags were searched: cannot fetch: {f})"
            ),
            None => e,
        })?,
    };
    let mut warnings = Vec::new();
    if let Some(e) = &fetch_error {
        let committed = git::commit_time(&repo, resolved.commit)
            .map(|t| format!("committed {}", git::age(t)))
            .unwrap_or_else(|| "commit time unknown".into());
        let fetched = cache
            .last_fetch()
            .map(|t| format!("last fetched {}", git::age(t)))
            .unwrap_or_else(|| "never fetched".into());
        warnings.push(format!(
            "cannot fetch `{shown}`: {e}\n  USING CACHED PLAYBOOKS: commit {} (`{}`, {committed}, {fetched})",
            git::short_id(resolved.commit),
            resolved.name
        ));
    }
    let dir = spec.repo_path.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let provenance = Provenance {
        repo: Some(shown.clone()),
        git_ref: Some(resolved.name.clone()),
        commit: Some(resolved.commit.to_string()),
        ..Provenance::default()
    };
    let prefix = if dir.is_empty() {
        format!("{}/", mapping::DIR)
    } else {
        format!("{dir}/{}/", mapping::DIR)
    };
    let (mappings, files): (Vec<_>, Vec<_>) =
        git::read_tree(&repo, resolved.commit, dir, &provenance)
            .with_context(|| format!("cannot load playbooks from `{shown}`"))?
            .into_iter()
            .partition(|f| f.path.starts_with(&prefix));
    let (teams, sources) = files.into_iter().partition(|f| {
        let rel = f.path.strip_prefix(dir).unwrap_or(&f.path);
        crate::teams::is_teams_file(rel.trim_start_matches('/'))
    });
    Ok(Read {
        sources,
        mappings,
        teams,
        warnings,
        origin: Some(Origin::Git {
            repo,
            commit: resolved.commit,
            remote,
        }),
        dir: None,
    })
}

/// `pin` (a full commit id) in `repo`, named as `git_ref` names it today.
fn pinned_at(
    repo: &Repository,
    git_ref: Option<&str>,
    pin: &str,
    shown: &str,
) -> anyhow::Result<git::Resolved> {
    let commit = Oid::from_str(pin)
        .ok()
        .filter(|oid| pin.len() == 40 && repo.find_commit(*oid).is_ok())
        .with_context(|| format!("commit `{pin}` is not in the cache of `{shown}`"))?;
    let name = git::resolve(repo, git_ref, shown)
        .map(|r| r.name)
        .unwrap_or_else(|_| git_ref.unwrap_or(pin).to_string());
    Ok(git::Resolved { commit, name })
}

impl Loaded {
    /// One line naming the source, e.g. `https://host/repo` at `3f2a9c1d` (`main`).
    pub fn describe(&self) -> Option<String> {
        describe(&self.origin)
    }

    /// The repository-relative path of a file as shown to users.
    fn repo_path(&self, file: &str) -> Option<String> {
        match &self.origin {
            Origin::Plain => None,
            Origin::Worktree { workdir, .. } => relative_to(workdir, file),
            Origin::Git { .. } => Some(file.to_string()),
        }
    }

    fn repo_and_tip(&self) -> anyhow::Result<(&Repository, Option<Oid>)> {
        match &self.origin {
            Origin::Plain => anyhow::bail!(
                "the playbooks are not in a Git repository; use `--repo` or run inside a worktree"
            ),
            Origin::Worktree { repo, .. } => Ok((repo, None)),
            Origin::Git { repo, commit, .. } => Ok((repo, Some(*commit))),
        }
    }

    /// The commits that changed `file` (as shown to users), newest first.
    pub fn history(&self, file: &str, limit: usize) -> anyhow::Result<Vec<history::Change>> {
        let (repo, tip) = self.repo_and_tip()?;
        let rel = self
            .repo_path(file)
            .with_context(|| format!("`{file}` is not inside the Git repository"))?;
        let tip = match tip {
            Some(t) => t,
            None => repo
                .head()
                .and_then(|h| h.peel_to_commit())
                .map(|c| c.id())
                .context("the worktree has no commits yet")?,
        };
        history::file_history(repo, tip, &rel, limit)
    }

    /// The files of the set (as shown to users) that differ from `base`:
    /// for a Git source, between `base` and the loaded commit; for a
    /// worktree, between `base` and the files on disk.
    pub fn changed_since(&self, base: &str) -> anyhow::Result<BTreeSet<String>> {
        let (repo, tip) = self.repo_and_tip()?;
        let base_commit = match &self.origin {
            Origin::Git { remote, .. } => git::resolve(repo, Some(base), &remote.display)?.commit,
            _ => repo
                .revparse_single(base)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .map_err(|_| {
                    let shown = repo
                        .workdir()
                        .map(|w| w.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    anyhow::Error::new(git::UnknownRef {
                        name: base.to_string(),
                        repo: shown,
                        help: git::suggest(repo, base),
                    })
                })?,
        };
        let changed = history::changed_paths(repo, base_commit, tip)?;
        Ok(self
            .set
            .files
            .iter()
            .filter(|f| self.repo_path(f).is_some_and(|rel| changed.contains(&rel)))
            .cloned()
            .collect())
    }
}
