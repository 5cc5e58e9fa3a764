//! Finding and reading the catalog: where it is ([`Request`] → a [`Tree`]
//! and its entry files), following Backstage `Location` entities to more
//! files, parsing each file's documents and compiling them into
//! [`Entity`]s. Every problem becomes a [`Diagnostic`] at file, line and
//! column; only an unreadable `--catalog` is an error for the command.
//!
//! Discovery, first that applies:
//! 1. `--catalog PATH`: a file, or every `*.yaml`/`*.yml` under a directory;
//!    `--catalog REPO[@REF]`: that repository's root `catalog-info.yaml`.
//! 2. `catalog-info.yaml` at the top of the playbook folder (a directory, or
//!    `--repo-path` inside `--repo` at `--ref`).
//!
//! `Location` targets are relative to the file that names them and must stay
//! inside the repository holding it (the enclosing Git worktree of a
//! directory, else the directory itself); URLs are not fetched.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::codeowners::{self, CodeOwners};
use super::model::{Entity, Kind, RawEntity, Written};
use super::refs::{DEFAULT_NAMESPACE, EntityRef};
use super::tree::{self, ReadError, Tree};
use super::{Catalog, Settings};
use crate::diagnostic::Diagnostic;
use crate::source::auth::RemoteUrl;
use crate::source::{self, Spec, git};
use crate::yaml::{Pos, Spanned};

/// The entry file of a playbook folder or a catalog repository.
pub const ENTRY_FILE: &str = "catalog-info.yaml";
/// Catalog files read at most.
pub const MAX_FILES: usize = 500;
/// Documents in one file at most.
pub const MAX_DOCUMENTS: usize = 5_000;
/// Entities in the whole catalog at most.
pub const MAX_ENTITIES: usize = 20_000;

/// Where to look for the catalog.
#[derive(Clone, Debug)]
pub struct Request {
    /// Where the playbooks come from; the catalog is found beside them.
    pub playbooks: Spec,
    /// `--catalog PATH|REPO[@REF]`, which wins.
    pub catalog: Option<String>,
}

/// Loads the catalog `request` names: `None` when none is given and the
/// playbook folder has no `catalog-info.yaml`.
pub fn load(request: &Request) -> anyhow::Result<Option<Catalog>> {
    let (tree, entries, origin, mut warnings) = match &request.catalog {
        Some(given) => given_catalog(given, &request.playbooks)?,
        None => match beside_playbooks(&request.playbooks)? {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    let codeowners = {
        let mut found = Vec::new();
        let c = read_codeowners(&tree, &mut found);
        (c, found)
    };
    if entries.is_empty() && codeowners.0.is_none() && codeowners.1.is_empty() {
        return Ok(None);
    }
    let mut loader = Loader {
        tree: &tree,
        catalog: Catalog::empty(origin),
        seen: BTreeSet::new(),
        queue: entries.into_iter().map(|e| (e, None)).collect(),
    };
    loader.run();
    let mut catalog = loader.catalog;
    catalog.warnings.append(&mut warnings);
    catalog.codeowners = codeowners.0;
    catalog.diagnostics.extend(codeowners.1);
    catalog.paths = match &tree {
        Tree::Dir { root, .. } => PathMap::Dir(root.clone()),
        Tree::Git { .. } => PathMap::Git,
    };
    Ok(Some(catalog))
}

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

type Found = (Tree, Vec<String>, String, Vec<String>);

/// The catalog beside the playbooks: their folder's `catalog-info.yaml`.
fn beside_playbooks(spec: &Spec) -> anyhow::Result<Option<Found>> {
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
fn given_catalog(given: &str, playbooks: &Spec) -> anyhow::Result<Found> {
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

/// The first CODEOWNERS of GitHub's locations at the repository root.
fn read_codeowners(tree: &Tree, diagnostics: &mut Vec<Diagnostic>) -> Option<CodeOwners> {
    for rel in codeowners::LOCATIONS {
        match tree.read(rel) {
            Err(ReadError::Missing) => continue,
            Err(ReadError::Other(msg)) => {
                diagnostics.push(Diagnostic::warning(
                    &tree.shown(rel),
                    Pos::UNKNOWN,
                    "codeowners",
                    msg,
                ));
                return None;
            }
            Ok(bytes) => {
                let file = tree.shown(rel);
                let text = String::from_utf8_lossy(&bytes);
                let parsed = CodeOwners::parse(&file, &text);
                for (pos, why) in &parsed.problems {
                    diagnostics.push(Diagnostic::warning(&file, *pos, "codeowners", why.clone()));
                }
                return Some(parsed);
            }
        }
    }
    None
}

/// Reads files breadth-first from the entries, following Locations.
struct Loader<'t> {
    tree: &'t Tree,
    catalog: Catalog,
    seen: BTreeSet<String>,
    /// Files to read, with the Location target that named them.
    queue: VecDeque<(String, Option<Target>)>,
}

/// A Location's target, where it was written.
#[derive(Clone)]
struct Target {
    file: String,
    pos: Pos,
    text: String,
    optional: bool,
}

impl Loader<'_> {
    fn run(&mut self) {
        while let Some((rel, by)) = self.queue.pop_front() {
            if !self.seen.insert(rel.clone()) {
                continue;
            }
            if self.seen.len() > MAX_FILES {
                let at = by.as_ref().map_or(Pos::UNKNOWN, |t| t.pos);
                let file = by.map_or_else(|| self.tree.shown(&rel), |t| t.file);
                self.catalog.diagnostics.push(Diagnostic::error(
                    &file,
                    at,
                    "catalog-limit",
                    format!("the catalog has more than {MAX_FILES} files; the rest are not read"),
                ));
                return;
            }
            // Settings come from the entry files' Locations, not from files they pull in.
            let entry = by.is_none();
            self.read_file(&rel, by.as_ref(), entry);
        }
    }

    fn read_file(&mut self, rel: &str, by: Option<&Target>, entry: bool) {
        let shown = self.tree.shown(rel);
        let bytes = match self.tree.read(rel) {
            Ok(b) => b,
            Err(ReadError::Missing) => {
                match by {
                    Some(t) if !t.optional => self.catalog.diagnostics.push(
                        Diagnostic::error(
                            &t.file,
                            t.pos,
                            "catalog-location",
                            format!("Location target `{}` does not exist (`{shown}`)", t.text),
                        )
                        .with_help("fix the path (relative to this file), or set `spec.presence: optional`"),
                    ),
                    Some(_) => {}
                    None => self.catalog.diagnostics.push(Diagnostic::error(
                        &shown,
                        Pos::UNKNOWN,
                        "catalog-location",
                        format!("catalog file `{shown}` does not exist"),
                    )),
                }
                return;
            }
            Err(ReadError::Other(msg)) => {
                self.catalog.diagnostics.push(Diagnostic::error(
                    &shown,
                    Pos::UNKNOWN,
                    "catalog-yaml",
                    msg,
                ));
                return;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            self.catalog.diagnostics.push(Diagnostic::error(
                &shown,
                Pos::UNKNOWN,
                "catalog-yaml",
                "file is not valid UTF-8",
            ));
            return;
        };
        self.catalog.files.push(shown.clone());
        let docs = crate::yaml::from_multiple::<Spanned<RawEntity>>(&text, MAX_DOCUMENTS);
        self.catalog.sources.insert(shown.clone(), text);
        let docs = match docs {
            Ok(d) => d,
            Err(e) => {
                self.catalog
                    .diagnostics
                    .push(Diagnostic::from_yaml(&shown, e, "catalog-schema"));
                return;
            }
        };
        for doc in docs {
            self.document(rel, &shown, doc, entry);
        }
    }

    fn document(&mut self, rel: &str, file: &str, doc: Spanned<RawEntity>, entry: bool) {
        let at = doc.pos;
        let raw = doc.value;
        let diags = &mut self.catalog.diagnostics;
        let Some(api) = raw.api_version.as_ref() else {
            diags.push(Diagnostic::error(file, at, "catalog-schema", "missing `apiVersion`").with_help(
                "a Backstage entity starts with `apiVersion: backstage.io/v1alpha1` and `kind:`",
            ));
            return;
        };
        if !api.value.starts_with("backstage.io/") {
            diags.push(
                Diagnostic::error(
                    file,
                    api.pos,
                    "catalog-schema",
                    format!("`apiVersion: {}` is not a Backstage entity", api.value),
                )
                .with_help("use `backstage.io/v1alpha1` (or `backstage.io/v1beta1`)"),
            );
            return;
        }
        let Some(kind_text) = raw.kind.as_ref() else {
            diags.push(Diagnostic::error(
                file,
                at,
                "catalog-schema",
                "missing `kind`",
            ));
            return;
        };
        let Some(meta) = raw.metadata.as_ref() else {
            diags.push(Diagnostic::error(
                file,
                at,
                "catalog-schema",
                "missing `metadata`",
            ));
            return;
        };
        let Some(name) = meta.name.as_ref().filter(|n| !n.trim().is_empty()) else {
            diags.push(Diagnostic::error(
                file,
                at,
                "catalog-schema",
                "missing `metadata.name`",
            ));
            return;
        };
        let kind = Kind::of(&kind_text.value);
        let namespace = meta
            .namespace
            .as_ref()
            .map(|n| n.value.to_lowercase())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        if kind == Kind::Location {
            if entry {
                self.catalog.settings.apply(&meta.annotations, file, diags);
            }
            self.location(rel, file, &raw);
            return;
        }
        if self.catalog.entities.len() >= MAX_ENTITIES {
            if self.catalog.entities.len() == MAX_ENTITIES {
                diags.push(Diagnostic::error(
                    file,
                    at,
                    "catalog-limit",
                    format!(
                        "the catalog has more than {MAX_ENTITIES} entities; the rest are ignored"
                    ),
                ));
            }
            return;
        }
        let spec = &raw.spec;
        let mut refs = RefParser {
            file,
            namespace: &namespace,
            diags,
        };
        let owner = refs.one(&spec.owner, Some("group"));
        let system = refs.one(&spec.system, Some("system"));
        let domain = refs.one(&spec.domain, Some("domain"));
        let depends_on = refs.many(&spec.depends_on, None);
        let dependency_of = refs.many(&spec.dependency_of, None);
        let parent = refs.one(&spec.parent, Some("group"));
        let children = refs.many(&spec.children, Some("group"));
        let members = refs.many(&spec.members, Some("user"));
        let member_of = refs.many(&spec.member_of, Some("group"));
        let profile = spec.profile.as_ref();
        let entity = Entity {
            entity_ref: EntityRef::new(&kind_text.value, &namespace, &name.value),
            kind,
            name: name.value.clone(),
            title: meta
                .title
                .clone()
                .or_else(|| profile.and_then(|p| p.display_name.clone()))
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| name.value.clone()),
            description: meta.description.clone(),
            spec_type: spec.kind_type.as_ref().map(|t| t.value.to_lowercase()),
            annotations: meta
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            annotation_pos: meta
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.pos))
                .collect(),
            owner,
            system,
            domain,
            depends_on,
            dependency_of,
            parent,
            children,
            members,
            member_of,
            email: profile.and_then(|p| p.email.clone()),
            file: file.to_string(),
            pos: at,
            name_pos: name.pos,
        };
        self.catalog.add(entity);
    }

    /// Queues a Location's targets.
    fn location(&mut self, rel: &str, file: &str, raw: &RawEntity) {
        let spec = &raw.spec;
        let optional = spec.presence.as_deref() == Some("optional");
        let is_url = spec
            .kind_type
            .as_ref()
            .is_some_and(|t| t.value.eq_ignore_ascii_case("url"));
        for target in spec.target.iter().chain(&spec.targets) {
            let text = target.value.trim();
            if is_url || text.contains("://") {
                self.catalog.diagnostics.push(
                    Diagnostic::warning(
                        file,
                        target.pos,
                        "catalog-location",
                        format!("Location target `{text}` is a URL; irctl reads files only and does not follow it"),
                    )
                    .with_help("copy the file into the repository, or pass its repository with `--catalog REPO@REF`"),
                );
                continue;
            }
            let Some(resolved) = tree::resolve(tree::parent(rel), text) else {
                self.catalog.diagnostics.push(
                    Diagnostic::error(
                        file,
                        target.pos,
                        "catalog-location",
                        format!("Location target `{text}` is outside the repository; not read"),
                    )
                    .with_help("targets are relative to this file and stay inside its repository"),
                );
                continue;
            };
            let by = Target {
                file: file.to_string(),
                pos: target.pos,
                text: text.to_string(),
                optional,
            };
            if resolved.contains(['*', '?']) {
                self.glob(&resolved, by);
            } else {
                self.queue.push_back((resolved, Some(by)));
            }
        }
    }

    /// Queues the files a glob target matches (`*`, `?`, `**`).
    fn glob(&mut self, pattern: &str, by: Target) {
        let literal: Vec<&str> = pattern
            .split('/')
            .take_while(|p| !p.contains(['*', '?']))
            .collect();
        let base = literal.join("/");
        let re = regex::Regex::new(&format!("^{}$", codeowners::glob_body(pattern)));
        let files = self.tree.list_yaml(&base).unwrap_or_default();
        let matched: Vec<String> = match re {
            Ok(re) => files.into_iter().filter(|f| re.is_match(f)).collect(),
            Err(_) => Vec::new(),
        };
        if matched.is_empty() && !by.optional {
            self.catalog.diagnostics.push(Diagnostic::error(
                &by.file,
                by.pos,
                "catalog-location",
                format!("Location target `{}` matches no file", by.text),
            ));
        }
        for f in matched {
            self.queue.push_back((f, Some(by.clone())));
        }
    }
}

/// Parses the references of one entity, reporting bad ones.
struct RefParser<'a> {
    file: &'a str,
    namespace: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl RefParser<'_> {
    fn parse(&mut self, w: &Spanned<String>, default_kind: Option<&str>) -> Option<Written> {
        match EntityRef::parse(&w.value, default_kind, self.namespace) {
            Ok(target) => Some(Written {
                target,
                text: w.value.clone(),
                pos: w.pos,
            }),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(self.file, w.pos, "catalog-ref", e.to_string())
                        .with_width(w.value.chars().count()),
                );
                None
            }
        }
    }

    fn one(&mut self, w: &Option<Spanned<String>>, default_kind: Option<&str>) -> Option<Written> {
        w.as_ref().and_then(|w| self.parse(w, default_kind))
    }

    fn many(&mut self, ws: &[Spanned<String>], default_kind: Option<&str>) -> Vec<Written> {
        ws.iter()
            .filter_map(|w| self.parse(w, default_kind))
            .collect()
    }
}

impl Catalog {
    fn empty(origin: String) -> Catalog {
        Catalog {
            origin,
            entities: BTreeMap::new(),
            diagnostics: Vec::new(),
            files: Vec::new(),
            sources: HashMap::new(),
            warnings: Vec::new(),
            settings: Settings::default(),
            codeowners: None,
            paths: PathMap::None,
        }
    }

    /// Adds an entity; a second one with the same reference is reported and dropped.
    fn add(&mut self, entity: Entity) {
        if let Some(first) = self.entities.get(&entity.entity_ref) {
            self.diagnostics.push(
                Diagnostic::error(
                    &entity.file,
                    entity.name_pos,
                    "duplicate-entity",
                    format!("`{}` is defined twice", entity.entity_ref),
                )
                .with_help(format!(
                    "the first definition, which is used, is at {}:{}:{}",
                    first.file, first.pos.line, first.pos.column
                ))
                .with_width(entity.name.chars().count()),
            );
            return;
        }
        self.entities.insert(entity.entity_ref.clone(), entity);
    }
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
