//! One `irctl test` session: load the playbooks of a directory and find
//! their tests ([`Session::open`]), decide whether they can run — a test
//! file or (when testing everything) a playbook that cannot be read stops
//! the session, because a test that cannot be read must not count as
//! passing ([`Session::plan`]) — run the chosen cases with their timelines
//! in a throwaway state directory ([`Session::run`]), and count the
//! verdicts and the coverage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::aim::Routing;
use super::report::{self, Branch};
use super::run::{Outcome, Verdict, run_case};
use super::{Case, Suite, collect};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::playbook::{PlaybookSet, load};

/// What to test.
#[derive(Clone, Copy, Debug)]
pub struct TestRequest<'a> {
    /// The playbook directory; tests sit beside the playbooks.
    pub root: &'a Path,
    /// Test only these playbooks (by name); empty means every playbook with tests.
    pub names: &'a [String],
}

/// The playbooks and their tests, loaded.
#[derive(Debug)]
pub struct Session {
    /// The playbooks.
    pub set: PlaybookSet,
    /// Their tests.
    pub suite: Suite,
    /// The teams file beside the playbooks, when it checks cleanly.
    pub teams: Option<crate::teams::Teams>,
    root: PathBuf,
    names: Vec<String>,
}

/// Whether a session can run.
#[derive(Debug)]
pub enum Plan<'a> {
    /// A playbook named is not among the valid ones; the findings that may
    /// say why come first.
    Unknown {
        /// The errors of broken playbooks and tests.
        broken: Vec<&'a Diagnostic>,
        /// What to tell the user.
        error: anyhow::Error,
    },
    /// Broken test files, or broken playbooks when testing everything: no test runs.
    Broken(Vec<&'a Diagnostic>),
    /// The cases to run (maybe none), and the playbooks named that have no tests.
    Ready {
        /// The cases, in suite order.
        cases: Vec<&'a Case>,
        /// Playbooks named without tests.
        untested: Vec<&'a str>,
    },
}

impl Session {
    /// Loads the playbooks under `req.root` and collects their tests.
    pub fn open(req: &TestRequest<'_>) -> anyhow::Result<Session> {
        let mut set = load::load_paths(std::slice::from_ref(&req.root.to_path_buf()))
            .with_context(|| format!("cannot load playbooks from `{}`", req.root.display()))?;
        let teams = bind_teams(&mut set, req.root);
        let suite = collect(&set, req.root);
        Ok(Session {
            set,
            suite,
            teams,
            root: req.root.to_path_buf(),
            names: req.names.to_vec(),
        })
    }

    /// The text of a playbook or test file, for showing a finding in context.
    pub fn source(&self, file: &str) -> Option<String> {
        self.set
            .sources
            .get(file)
            .or_else(|| self.suite.sources.get(file))
            .cloned()
    }

    /// Whether the playbook `name` is tested in this session.
    pub fn selected(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    /// What can run.
    pub fn plan(&self) -> Plan<'_> {
        let mut broken: Vec<&Diagnostic> = self
            .suite
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        if self.names.is_empty() {
            broken.extend(self.set.diagnostics.iter().filter(|d| d.is_error()));
        }
        if let Some(name) = self.names.iter().find(|n| self.set.get(n).is_none()) {
            let help = did_you_mean(name, self.set.playbooks.iter().map(|p| p.name.as_str()))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            let error = anyhow::anyhow!(
                "no valid playbook `{name}` in `{}`{help}",
                self.root.display()
            );
            return Plan::Unknown { broken, error };
        }
        if !broken.is_empty() {
            return Plan::Broken(broken);
        }
        let cases: Vec<&Case> = self
            .suite
            .cases
            .iter()
            .filter(|c| self.selected(&c.playbook))
            .collect();
        let untested = self
            .names
            .iter()
            .filter(|n| !cases.iter().any(|c| &c.playbook == *n))
            .map(String::as_str)
            .collect();
        Plan::Ready { cases, untested }
    }

    /// Runs `cases` through the engine with canned results, their team
    /// steps aimed through `catalog` and the session's teams as `irctl run`
    /// aims them; their runs leave timelines in a throwaway directory,
    /// never the user's state, and record no impact notice anywhere.
    /// No case at all is an error: a session that tests nothing must not pass.
    pub async fn run(
        &self,
        cases: &[&Case],
        catalog: Option<&crate::catalog::Catalog>,
    ) -> anyhow::Result<Vec<Outcome>> {
        if cases.is_empty() {
            anyhow::bail!(
                "no tests found in `{}`: add `tests:` to a playbook or a `NAME.test.yaml` next to it",
                self.root.display()
            );
        }
        let state = tempfile::Builder::new()
            .prefix("irctl-test")
            .tempdir()
            .context("cannot create a temporary state directory")?;
        let routing = Routing {
            catalog,
            teams: self.teams.as_ref(),
        };
        let mut out = Vec::new();
        for case in cases {
            if let Some(playbook) = self.set.get(&case.playbook) {
                out.push(run_case(playbook, case, routing, state.path()).await);
            }
        }
        Ok(out)
    }

    /// Every step and branch of the tested playbooks, and whether `outcomes` exercised it.
    pub fn coverage(&self, outcomes: &[Outcome]) -> Coverage {
        let mut branches = Vec::new();
        for p in self.set.playbooks.iter().filter(|p| self.selected(&p.name)) {
            let runs: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.case.playbook == p.name && o.status.is_some())
                .collect();
            branches.extend(report::coverage(p, &runs));
        }
        Coverage { branches }
    }
}

/// Binds the playbooks' team steps to the teams file in `root`, as a run
/// loading the same folder does, with its findings and text.
fn bind_teams(set: &mut PlaybookSet, root: &Path) -> Option<crate::teams::Teams> {
    let found = if root.is_dir() {
        crate::teams::find_in_dir(root)
    } else {
        Vec::new()
    };
    let (teams, diags, text) = crate::teams::load(&found);
    if let Some(first) = found.first() {
        set.files.push(first.path.clone());
        if let Some(text) = text {
            set.sources.insert(first.path.clone(), text);
        }
    }
    set.diagnostics.extend(diags);
    crate::teams::bind(set, teams.as_ref(), found.first().map(|f| f.path.as_str()));
    teams
}

/// The verdicts of a session, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: usize,
    /// Tests whose expectations failed.
    pub failed: usize,
    /// Tests that could not run (exit 2).
    pub errors: usize,
    /// Their time, summed.
    pub total: Duration,
}

impl Counts {
    /// Counts `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Counts {
        let mut counts = Counts::default();
        for o in outcomes {
            match o.verdict {
                Verdict::Passed => counts.passed += 1,
                Verdict::Failed(_) => counts.failed += 1,
                Verdict::Error(_) => counts.errors += 1,
            }
            counts.total += o.duration;
        }
        counts
    }
}

/// Which steps and branches the tests exercised.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// Every branch, in playbook and step order.
    pub branches: Vec<Branch>,
}

impl Coverage {
    /// How many branches some test exercised.
    pub fn covered(&self) -> usize {
        self.branches.iter().filter(|b| b.covered).count()
    }

    /// The share exercised, in whole percent (rounded down; 100 when there is nothing to cover).
    pub fn percent(&self) -> usize {
        if self.branches.is_empty() {
            100
        } else {
            self.covered() * 100 / self.branches.len()
        }
    }

    /// The branches no test exercised.
    pub fn missing(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| !b.covered)
    }
}
