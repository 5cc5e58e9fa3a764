//! Readiness: a count of unfinished needs per step and a queue of ready
//! steps, so a run costs time linear in its steps and edges.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Fate;
use crate::engine::context::StepStatus;

/// Which steps are finished, which wait on how many needs, which are ready.
pub(super) struct Board {
    pub(super) fates: Vec<Option<Fate>>,
    remaining: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    pub(super) ready: BinaryHeap<Reverse<usize>>,
}

impl Board {
    /// The board for `steps`, some of them already finished (`fates`, a resume).
    pub(super) fn new(steps: &[crate::playbook::Step], fates: Vec<Option<Fate>>) -> Board {
        let mut dependents = vec![Vec::new(); steps.len()];
        let mut remaining = vec![0; steps.len()];
        for (i, s) in steps.iter().enumerate() {
            for &j in &s.needs {
                if let Some(d) = dependents.get_mut(j) {
                    d.push(i);
                    if fates[j].is_none() {
                        remaining[i] += 1;
                    }
                }
            }
        }
        // Lowest index first keeps the timeline in file order where the DAG allows.
        let ready = (0..steps.len())
            .filter(|&i| fates[i].is_none() && remaining[i] == 0)
            .map(Reverse)
            .collect();
        Board {
            fates,
            remaining,
            dependents,
            ready,
        }
    }

    /// Records that step `i` ended with `status`, readying the steps that waited only on it.
    pub(super) fn settle(&mut self, steps: &[crate::playbook::Step], i: usize, status: StepStatus) {
        let step = &steps[i];
        self.fates[i] = Some(Fate::of(
            i,
            status,
            step.continue_on_error,
            &step.needs,
            &self.fates,
        ));
        for &d in &self.dependents[i] {
            self.remaining[d] -= 1;
            if self.remaining[d] == 0 && self.fates[d].is_none() {
                self.ready.push(Reverse(d));
            }
        }
    }
}
