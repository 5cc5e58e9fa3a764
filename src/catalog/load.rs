//! Reading the catalog: from the [`Tree`] and entry files [`super::find`]
//! chose, following Backstage `Location` entities to more files, parsing
//! each file's documents and compiling them into [`Entity`]s. Every problem
//! becomes a [`Diagnostic`] at file, line and column; only an unreadable
//! `--catalog` is an error for the command.
//!
//! `Location` targets are relative to the file that names them and must stay
//! inside the repository holding it (the enclosing Git worktree of a
//! directory, else the directory itself); URLs are not fetched.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::codeowners::{self, CodeOwners};
use super::model::{Entity, Kind, RawEntity, Written};
use super::refs::{DEFAULT_NAMESPACE, EntityRef};
use super::tree::{self, ReadError, Tree};
use super::{Catalog, Settings, find};
use crate::diagnostic::Diagnostic;
use crate::source::Spec;
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
        Some(given) => find::given_catalog(given, &request.playbooks)?,
        None => match find::beside_playbooks(&request.playbooks)? {
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
        Tree::Dir { root, .. } => find::PathMap::Dir(root.clone()),
        Tree::Git { .. } => find::PathMap::Git,
    };
    Ok(Some(catalog))
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
            paths: find::PathMap::None,
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
