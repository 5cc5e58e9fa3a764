//! A content-addressed summary of every playbook file, so `irctl match` and
//! `irctl run` fully check only the playbooks they are going to use.
//!
//! Checking one playbook (YAML, templates, cron, the drill incident) costs a
//! fraction of a millisecond, which over a 10,000-playbook repo is seconds of
//! a responder's time. Matching only needs each file's name, priority, owner,
//! matchers and `when`, and whether the file is valid. Those are a pure
//! function of the file's bytes and of this irctl build, so they are memoised
//! by Git blob id in one cache file; an edited file is a new blob and is
//! checked again. The playbooks finally chosen are always checked in full
//! from their current bytes, so a stale or tampered cache can at worst change
//! which files are considered, never what runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::PlaybookSet;
use super::load::{self, SourceFile};
use super::matcher::{Candidate, Matcher};

/// Name of the cache file inside the cache directory.
pub const CACHE_FILE: &str = "playbook-index-v1.json";

/// Entries kept in the cache file; beyond this only the current set's are kept,
/// so a cache shared by many repos cannot grow without bound.
const MAX_CACHED: usize = 200_000;

/// What matching needs from one valid playbook file (the cached form).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Summary {
    name: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    per_alert: bool,
    #[serde(default)]
    routing: bool,
}

/// The cache file: summaries by blob id; `None` marks a file with errors.
#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    build: String,
    entries: HashMap<String, Option<Summary>>,
}

/// One valid playbook as matching sees it.
#[derive(Debug)]
pub struct Entry {
    /// The playbook's name.
    pub name: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Its priority.
    pub priority: i64,
    /// Parsed `match.labels`.
    pub matchers: Vec<Matcher>,
    /// `match.when`.
    pub when: Option<String>,
    /// `match.per_alert`.
    pub per_alert: bool,
    /// `kind: routing`.
    pub routing: bool,
    /// Index into the sources.
    source: usize,
}

impl Candidate for Entry {
    fn name(&self) -> &str {
        &self.name
    }
    fn priority(&self) -> i64 {
        self.priority
    }
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
    fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }
    fn per_alert(&self) -> bool {
        self.per_alert
    }
    fn routing(&self) -> bool {
        self.routing
    }
}

/// Every playbook file summarised: what matching and naming need, cheaply.
pub struct Index {
    /// Valid playbooks in file order; of two with one name the first is kept,
    /// as in a full load.
    pub entries: Vec<Entry>,
    /// Files with errors (including a duplicate playbook name), as shown to users.
    pub broken: Vec<String>,
    sources: Vec<SourceFile>,
    /// Files just checked in full to summarise them (by source index), kept
    /// when few so that the playbook then chosen is not checked twice.
    checked: Mutex<HashMap<usize, load::Checked>>,
}

/// Files checked afresh are kept whole up to this many; beyond, keeping
/// them would hold a large repository's every playbook in memory for the
/// sake of the one or two that run.
const KEEP_CHECKED: usize = 16;

/// Ties the cache to this exact binary: summaries depend on the validator's
/// rules, which change between builds without a version bump.
fn build_key() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{}:{mtime}", m.len())
        })
        .unwrap_or_default();
    format!("{}+{exe}", env!("CARGO_PKG_VERSION"))
}

fn read_cache(path: &Path, key: &str) -> CacheFile {
    // A missing, unreadable or foreign cache is simply empty: it only saves time.
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
        .filter(|c| c.build == key)
        .unwrap_or_default()
}

fn write_cache(path: &Path, cache: &CacheFile) {
    // Best effort, and atomic (temp file + rename) so a concurrent reader
    // sees the old or the new file, never half of one. Failing to write only
    // costs the next invocation time, so it is not reported.
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".{CACHE_FILE}.{}", std::process::id()));
    let Ok(bytes) = serde_json::to_vec(cache) else {
        return;
    };
    // A cache that cannot be written (a full disk) is only slower next time;
    // what a failed write left of it must not take up the space.
    if std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The blob id of a readable file (set by [`load::with_blob_id`]).
fn blob(s: &SourceFile) -> Option<&str> {
    s.bytes.is_ok().then_some(s.provenance.blob.as_str())
}

fn summarize(checked: &load::Checked) -> Option<Summary> {
    if checked.diagnostics.iter().any(|d| d.is_error()) {
        return None;
    }
    let p = checked.playbook.as_ref()?;
    Some(Summary {
        name: p.name.clone(),
        owner: p.owner.clone(),
        priority: p.priority,
        labels: p.labels.clone(),
        when: p.when.clone(),
        per_alert: p.per_alert,
        routing: p.kind == super::model::PlaybookKind::Routing,
    })
}

impl Index {
    /// Summarises `sources`, checking in full only files the cache at
    /// `cache_dir` does not know (every file when `cache_dir` is `None`).
    pub fn build(sources: Vec<SourceFile>, cache_dir: Option<&Path>) -> Index {
        let cache_path: Option<PathBuf> = cache_dir.map(|d| d.join(CACHE_FILE));
        let key = build_key();
        let mut cache = cache_path
            .as_deref()
            .map(|p| read_cache(p, &key))
            .unwrap_or_default();
        // Blob ids go into each file's provenance, where the full check of
        // a chosen playbook finds them instead of hashing the file again.
        let sources = load::par_map(sources, load::with_blob_id);
        let misses: Vec<usize> = (0..sources.len())
            .filter(|&i| blob(&sources[i]).is_some_and(|b| !cache.entries.contains_key(b)))
            .collect();
        let fresh = load::par_map(
            misses.iter().map(|&i| sources[i].clone()).collect(),
            load::check_source,
        );
        let checked = misses.len();
        let mut kept = HashMap::new();
        for (&i, full) in misses.iter().zip(fresh) {
            cache
                .entries
                .insert(sources[i].provenance.blob.clone(), summarize(&full));
            if checked <= KEEP_CHECKED {
                kept.insert(i, full);
            }
        }
        let mut index = Index {
            entries: Vec::new(),
            broken: Vec::new(),
            sources: Vec::new(),
            checked: Mutex::new(kept),
        };
        let mut names: HashSet<String> = HashSet::new();
        for (i, src) in sources.iter().enumerate() {
            let summary = blob(src).and_then(|b| cache.entries.get(b).cloned().flatten());
            let matchers = summary.as_ref().map(|s| {
                s.labels
                    .iter()
                    .map(|l| Matcher::parse(l))
                    .collect::<Result<Vec<_>, _>>()
            });
            match (summary, matchers) {
                (Some(s), Some(Ok(matchers))) if names.insert(s.name.clone()) => {
                    index.entries.push(Entry {
                        name: s.name,
                        owner: s.owner,
                        priority: s.priority,
                        matchers,
                        when: s.when,
                        per_alert: s.per_alert,
                        routing: s.routing,
                        source: i,
                    })
                }
                _ => index.broken.push(src.path.clone()),
            }
        }
        if let Some(path) = &cache_path
            && checked > 0
        {
            if cache.entries.len() > MAX_CACHED {
                let keep: HashSet<&str> = sources.iter().filter_map(blob).collect();
                cache.entries.retain(|b, _| keep.contains(b.as_str()));
            }
            cache.build = key;
            write_cache(path, &cache);
        }
        index.sources = sources;
        index
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every file, checked in full: what `validate` and `list` see.
    pub fn load_all(&self) -> PlaybookSet {
        load::from_sources(self.sources.clone())
    }

    /// The playbooks named `names`, checked in full from their bytes. Should a
    /// file not produce the playbook its summary promised (a stale or edited
    /// cache), every file is checked, so the result is always what a full
    /// load would give.
    pub fn load(&self, names: &[&str]) -> PlaybookSet {
        let picked: Vec<usize> = names
            .iter()
            .filter_map(|n| self.get(n))
            .map(|e| e.source)
            .collect();
        // Files the summary step already checked in full are not checked again.
        let mut kept = match self.checked.lock() {
            Ok(mut k) => std::mem::take(&mut *k),
            Err(_) => HashMap::new(),
        };
        let slots: Vec<Option<load::Checked>> = picked.iter().map(|i| kept.remove(i)).collect();
        let missing: Vec<SourceFile> = picked
            .iter()
            .zip(&slots)
            .filter(|(_, slot)| slot.is_none())
            .map(|(&i, _)| self.sources[i].clone())
            .collect();
        let mut fresh = load::par_map(missing, load::check_source).into_iter();
        let checked: Vec<load::Checked> = slots
            .into_iter()
            .filter_map(|slot| slot.or_else(|| fresh.next()))
            .collect();
        let set = load::from_checked(checked);
        let complete = names.iter().all(|n| set.get(n).is_some()) && !set.has_errors();
        if complete { set } else { self.load_all() }
    }
}
