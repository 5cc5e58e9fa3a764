//! The step graph: ancestors through `needs`, and cycles.

use super::*;
use std::collections::HashSet;

use crate::playbook::model::RawStep;

/// Steps reachable from `i` through `needs` (its ancestors: guaranteed finished before it).
pub(super) fn ancestors(i: usize, needs: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack: Vec<usize> = needs[i].clone();
    while let Some(j) = stack.pop() {
        if seen.insert(j) {
            stack.extend(needs[j].iter().copied());
        }
    }
    seen
}

pub(super) fn report_cycles(c: &mut Checker<'_>, steps: &[RawStep], needs: &[Vec<usize>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; steps.len()];
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..steps.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS so a 10,000-step chain cannot overflow the stack.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if *next < needs[node].len() {
                let to = needs[node][*next];
                *next += 1;
                match marks[to] {
                    Mark::New => {
                        marks[to] = Mark::Active;
                        path.push((to, 0));
                    }
                    Mark::Active => {
                        let from = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            let mut names: Vec<&str> =
                                cycle.iter().map(|&n| steps[n].id.value.as_str()).collect();
                            names.push(&steps[to].id.value);
                            let first = cycle[0];
                            let second = *cycle.get(1).unwrap_or(&first);
                            let pos = steps[first]
                                .needs
                                .iter()
                                .find(|n| n.value == steps[second].id.value)
                                .map(|n| n.pos)
                                .unwrap_or(steps[first].id.pos);
                            c.error(
                                pos,
                                "cycle",
                                format!("steps form a cycle: {}", names.join(" -> ")),
                            )
                            .help = Some(
                                "remove one of these `needs` so the steps can be ordered".into(),
                            );
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
}
