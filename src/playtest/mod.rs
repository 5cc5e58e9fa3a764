//! Playbook tests (`irctl test`): prove a playbook's response without
//! running anything for real.
//!
//! Tests live in a playbook's `tests:` list or in a sibling `NAME.test.yaml`
//! (the format is the playbook's: [`crate::playbook::test_format`]). Inline
//! ones are checked when the playbook is; [`collect`] finds the files and
//! checks them against their playbooks ([`crate::playbook::test_check`]);
//! [`run::run_case`] runs each through the real engine with a
//! canned executor (no process, no network) and compares what happened with
//! what the test expects, its team steps aimed as a run aims them
//! ([`aim`]); [`report`] renders diffs, JUnit XML and coverage;
//! [`session`] is one `irctl test` from loading to counting.

pub mod aim;
pub mod report;
pub mod run;
pub mod session;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::playbook::{Playbook, PlaybookSet, test_check};
use crate::yaml::Pos;

pub use test_check::Case;

/// Largest test file read.
pub const MAX_TEST_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Directory nesting followed when looking for test files.
const MAX_DEPTH: usize = 16;

/// Every test found, checked, with the findings about broken ones.
#[derive(Debug, Default)]
pub struct Suite {
    /// Runnable tests, playbook by playbook in load order, inline ones first.
    pub cases: Vec<Case>,
    /// Problems with test files (errors make `irctl test` exit 2).
    pub diagnostics: Vec<Diagnostic>,
    /// Test file text by path, for rendering diagnostics.
    pub sources: HashMap<String, String>,
}

fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./")
        .map(str::to_string)
        .unwrap_or_else(|| s.into_owned())
}

/// The playbook file name a test file belongs to: `NAME` of `NAME.test.yaml`.
fn test_stem(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    name.strip_suffix(".test.yaml")
        .or_else(|| name.strip_suffix(".test.yml"))
}

/// Walks each real directory once: symlinks back up the tree (`a -> .`,
/// `b -> .`) would otherwise multiply the paths at every level.
fn walk(dir: &Path, depth: usize, seen: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(real) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, seen, out);
            }
        } else if test_stem(&path).is_some() {
            out.push(path);
        }
    }
}

/// The `*.test.yaml` / `*.test.yml` files under `root`, in path order.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, 0, &mut HashSet::new(), &mut out);
    } else if test_stem(root).is_some() {
        out.push(root.to_path_buf());
    }
    out
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_TEST_FILE_BYTES {
        return Err(format!(
            "{} bytes, over the {} MiB limit for a test file",
            meta.len(),
            MAX_TEST_FILE_BYTES / 1024 / 1024
        ));
    }
    crate::capped::read_to_string(path, MAX_TEST_FILE_BYTES)
        .map_err(|e| format!("cannot read: {e}"))
}

/// Finds the tests of the playbooks in `set` (loaded from `root`): inline
/// `tests:` and sibling `NAME.test.yaml` files, each checked.
pub fn collect(set: &PlaybookSet, root: &Path) -> Suite {
    let mut suite = Suite::default();
    // Cases by playbook index; a playbook by its file, looked up once per
    // test file rather than scanning every playbook (validate runs this too).
    let mut by_playbook: Vec<Vec<Case>> = vec![Vec::new(); set.playbooks.len()];
    let by_file: HashMap<&str, usize> = set
        .playbooks
        .iter()
        .enumerate()
        .map(|(i, p)| (p.file(), i))
        .collect();
    for (p, list) in set.playbooks.iter().zip(&mut by_playbook) {
        list.extend(p.tests.iter().cloned());
    }
    for path in discover(root) {
        let file = display(&path);
        let Some(stem) = test_stem(&path) else {
            continue;
        };
        let text = match read_bounded(&path) {
            Ok(t) => t,
            Err(msg) => {
                suite.diagnostics.push(Diagnostic::error(
                    &file,
                    Pos::UNKNOWN,
                    "test-file",
                    format!("`{file}`: {msg}"),
                ));
                continue;
            }
        };
        let candidates: Vec<String> = ["yaml", "yml"]
            .iter()
            .map(|ext| display(&path.with_file_name(format!("{stem}.{ext}"))))
            .collect();
        let index = candidates
            .iter()
            .find_map(|c| by_file.get(c.as_str()).copied());
        suite.sources.insert(file.clone(), text);
        let Some(index) = index else {
            let broken = candidates.iter().find(|c| set.files.contains(c));
            let (msg, help) = match broken {
                Some(c) => (
                    format!("the tests in `{file}` cannot run: playbook file `{c}` has errors"),
                    "run `irctl validate` to see them".to_string(),
                ),
                None => (
                    format!("`{file}` has no playbook next to it (`{}`)", candidates[0]),
                    format!(
                        "name test files after their playbook file: `{stem}.yaml` → `{stem}.test.yaml`"
                    ),
                ),
            };
            suite
                .diagnostics
                .push(Diagnostic::error(&file, Pos::new(1, 1), "test-file", msg).with_help(help));
            continue;
        };
        let text = &suite.sources[&file];
        let raw_file = match test_check::parse_file(&file, text) {
            Ok(f) => f,
            Err(d) => {
                suite.diagnostics.push(d);
                continue;
            }
        };
        let (cases, diags) =
            test_check::compile(&file, text, &set.playbooks[index], &raw_file.tests);
        suite.diagnostics.extend(diags);
        let list = &mut by_playbook[index];
        for case in cases {
            if list.iter().any(|c| c.name == case.name) {
                suite.diagnostics.push(Diagnostic::error(
                    &file,
                    case.pos,
                    "duplicate-test",
                    format!(
                        "playbook `{}` has two tests named `{}`",
                        case.playbook, case.name
                    ),
                ));
                continue;
            }
            list.push(case);
        }
    }
    for (p, cases) in set.playbooks.iter().zip(&by_playbook) {
        for case in cases {
            let text = suite
                .sources
                .get(&case.file)
                .or_else(|| set.sources.get(&case.file));
            suite.diagnostics.extend(unknown_secrets(p, case, text));
        }
    }
    suite.cases = by_playbook.into_iter().flatten().collect();
    suite
}

/// A test's `secrets:` that neither the playbook declares nor a team
/// channel of its `team: owner|impacted` steps reads (a misspelt channel
/// secret would otherwise just leave the channel skipped).
fn unknown_secrets(playbook: &Playbook, case: &Case, text: Option<&String>) -> Vec<Diagnostic> {
    let mut known: Vec<&str> = playbook.secrets.iter().map(String::as_str).collect();
    for step in playbook.steps.iter().chain(&playbook.on_resolved) {
        if let crate::playbook::StepAction::Notify(n) = &step.action
            && let Some(roster) = &n.roster
        {
            known.extend(
                roster
                    .teams
                    .values()
                    .flat_map(|t| &t.channels)
                    .map(|c| c.secret.as_str()),
            );
        }
    }
    let locator = text.map(|t| crate::yaml::Locator::new(t));
    case.secrets
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            let pos = locator
                .as_ref()
                .and_then(|l| l.locate_key(case.pos, k))
                .unwrap_or(case.pos);
            Diagnostic::error(
                &case.file,
                pos,
                "undeclared-secret",
                format!(
                    "test `{}`: secret `{k}` is neither declared in `secrets:` nor read by a team channel in teams.yaml",
                    case.name
                ),
            )
            .with_optional_help(crate::diagnostic::did_you_mean(k, known.iter().copied()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_walks_each_real_directory_once_through_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("db.test.yaml"), "tests: []\n").unwrap();
        // Three links back to the root: 3^16 paths if followed blindly.
        for name in ["a", "b", "c"] {
            std::os::unix::fs::symlink(".", root.join(name)).unwrap();
        }
        let start = std::time::Instant::now();
        let found = discover(root);
        assert_eq!(found, vec![root.join("db.test.yaml")]);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
