//! What automation did: each run's steps and DAG, and the playbook
//! versions that ran with what changed in them since.

use std::collections::BTreeSet;

use super::{PlaybookVersion, RunReport, StepRow};
use crate::record::{Run, history, show_time, step_outcomes};

fn ms(v: u64) -> String {
    crate::duration::format(std::time::Duration::from_millis(v))
}

pub(super) fn run_report(run: &Run) -> RunReport {
    let s = &run.summary;
    let dag = crate::record::diagram::recorded_run_graph(run);
    RunReport {
        run_id: s.run_id.clone(),
        playbook: s.playbook.clone(),
        status: s.status.clone(),
        drill: s.drill,
        started: s.started.map(show_time),
        duration: s.duration_ms.map(ms),
        steps: step_outcomes(run)
            .into_iter()
            .map(|o| StepRow {
                id: o.id,
                status: o.status,
                attempts: o.attempts,
                duration: o.duration_ms.map(ms),
                reason: o.reason,
            })
            .collect(),
        dag: crate::graph::mermaid::render(&dag),
        dag_note: dag.note,
    }
}

pub(super) fn playbook_versions(runs: &[&Run]) -> Vec<PlaybookVersion> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for run in runs {
        let Some(started) = run.started() else {
            continue;
        };
        let p = &started.provenance;
        let name = started.playbook.clone();
        let blob = p.blob.clone();
        if !seen.insert((name.clone(), blob.clone(), p.commit.clone())) {
            continue;
        }
        let (repo, git_ref, commit) = (p.repo.clone(), p.git_ref.clone(), p.commit.clone());
        let path = p.path.clone();
        let changes = match (&repo, &commit) {
            (Some(repo), Some(commit)) => {
                history::changes_since(repo, git_ref.as_deref(), commit, &path)
            }
            _ => Err("the playbook was not loaded from Git".to_string()),
        };
        let (changes_since, changes_unknown) = match changes {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(why)),
        };
        out.push(PlaybookVersion {
            name,
            repo,
            git_ref,
            commit,
            path,
            blob,
            changes_since,
            changes_unknown,
        });
    }
    out
}
