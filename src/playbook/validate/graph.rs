//! The step graph: ancestors through `needs`, and cycles.

use super::*;
use std::cell::OnceCell;
use std::collections::HashSet;

use crate::playbook::model::RawStep;

/// Which steps are guaranteed finished before which: the ancestors of each
/// step through `needs`, one bit set per step, computed once for the whole
/// graph on first use (a set per step, each found by its own walk, was
/// quadratic in time and the largest cost of checking a long playbook).
pub(super) struct Ancestry<'a> {
    needs: &'a [Vec<usize>],
    sets: OnceCell<BitSets>,
}

/// `n` bit sets of `n` bits, in one allocation.
struct BitSets {
    words: usize,
    bits: Vec<u64>,
}

impl BitSets {
    fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    fn contains(&self, i: usize, j: usize) -> bool {
        self.row(i)[j / 64] & (1 << (j % 64)) != 0
    }
}

impl<'a> Ancestry<'a> {
    /// The ancestry of the graph `needs` (each step's needs, by index, without duplicates).
    pub(super) fn new(needs: &'a [Vec<usize>]) -> Self {
        Ancestry {
            needs,
            sets: OnceCell::new(),
        }
    }

    /// Whether `ancestor` is reachable from `step` through `needs`.
    pub(super) fn contains(&self, step: usize, ancestor: usize) -> bool {
        self.sets
            .get_or_init(|| compute(self.needs))
            .contains(step, ancestor)
    }
}

fn compute(needs: &[Vec<usize>]) -> BitSets {
    let n = needs.len();
    let words = n.div_ceil(64);
    let mut sets = BitSets {
        words,
        bits: vec![0; n * words],
    };
    // Steps in topological order (Kahn): a step's set is the union of its
    // needs' sets and the needs themselves, each already complete.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    for (i, list) in needs.iter().enumerate() {
        for &j in list {
            dependents[j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; n];
    while let Some(i) = ready.pop() {
        done[i] = true;
        for &j in &needs[i] {
            let (from, to) = (j * words, i * words);
            for w in 0..words {
                sets.bits[to + w] |= sets.bits[from + w];
            }
            sets.bits[to + j / 64] |= 1 << (j % 64);
        }
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    // Steps on or after a cycle (an error reported elsewhere) have no
    // order; walk the graph for each of them.
    for i in (0..n).filter(|&i| !done[i]) {
        for j in walk(i, needs) {
            sets.bits[i * words + j / 64] |= 1 << (j % 64);
        }
    }
    sets
}

/// Steps reachable from `i` through `needs`, by walking the graph.
fn walk(i: usize, needs: &[Vec<usize>]) -> HashSet<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_is_what_walking_the_graph_reaches() {
        // A diamond, a chain, a cycle (1 <-> 2) with a step after it, a self-loop.
        let graphs: Vec<Vec<Vec<usize>>> = vec![
            vec![vec![], vec![0], vec![0], vec![1, 2]],
            (0..130)
                .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
                .collect(),
            vec![vec![], vec![0, 2], vec![1], vec![2], vec![3, 4]],
            vec![vec![0]],
        ];
        for needs in &graphs {
            let ancestry = Ancestry::new(needs);
            for i in 0..needs.len() {
                let walked = walk(i, needs);
                for j in 0..needs.len() {
                    assert_eq!(
                        ancestry.contains(i, j),
                        walked.contains(&j),
                        "{needs:?}: {i} {j}"
                    );
                }
            }
        }
    }
}
