//! Triggers: whether a step whose needs have all finished should run, and
//! if not, why — in the words the timeline and the report show.

use crate::engine::context::StepStatus;
use crate::playbook::model::Trigger;

/// What a finished step means to the triggers of the steps after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::engine) struct Fate {
    /// How it ended.
    pub(in crate::engine) status: StepStatus,
    /// The nearest failure among the step and its ancestors that
    /// `continue_on_error` does not cover (a step index).
    pub(in crate::engine) failed: Option<usize>,
    /// The nearest failure among the step and its ancestors that
    /// `continue_on_error` covers (a step index).
    pub(in crate::engine) tolerated: Option<usize>,
}

impl Fate {
    /// The fate of step `index`, which ended with `status`, given its needs' fates.
    pub(in crate::engine) fn of(
        index: usize,
        status: StepStatus,
        continue_on_error: bool,
        needs: &[usize],
        fates: &[Option<Fate>],
    ) -> Fate {
        let own = status.is_failure().then_some(index);
        let inherited = |pick: fn(&Fate) -> Option<usize>| {
            needs
                .iter()
                .find_map(|&j| fates.get(j).copied().flatten().as_ref().and_then(pick))
        };
        let (failed, tolerated) = if continue_on_error {
            (None, own)
        } else {
            (own, None)
        };
        Fate {
            status,
            failed: failed.or_else(|| inherited(|f| f.failed)),
            tolerated: tolerated.or_else(|| inherited(|f| f.tolerated)),
        }
    }
}

/// How a failed status reads after a step id.
fn failed_words(status: StepStatus) -> &'static str {
    match status {
        StepStatus::TimedOut => "timed out",
        StepStatus::Cancelled => "was cancelled",
        _ => "failed",
    }
}

/// Why a step with `trigger` and `needs` (all finished, their fates in
/// `fates`) should not run, if it should not; `ids` names steps by index.
///
/// A failure under `continue_on_error` is tolerated: it does not hold back
/// `on_success` steps and does not spread to descendants; only an
/// `on_failure` step that names it in `needs` reacts to it. A step skipped
/// by its `when` (or by a trigger that did not fire) is not a failure: it
/// does not set off `on_failure`, and `on_success` steps that need it are
/// skipped too, since there is nothing to build on.
pub(super) fn trigger_skip(
    trigger: Trigger,
    needs: &[usize],
    fates: &[Option<Fate>],
    ids: &[&str],
) -> Option<String> {
    let fate = |j: usize| fates.get(j).copied().flatten();
    let id = |j: usize| ids.get(j).copied().unwrap_or("?");
    match trigger {
        Trigger::Always => None,
        Trigger::OnSuccess => needs.iter().find_map(|&j| {
            // The first need that is not fine says why, and where a failure came from.
            let f = fate(j)?;
            let cause = |up: usize| {
                let status = fate(up).map_or(StepStatus::Failed, |u| u.status);
                format!("{} {}", id(up), failed_words(status))
            };
            match f.failed {
                Some(up) if up == j => Some(format!("need {}", cause(j))),
                Some(up) if f.status == StepStatus::Skipped => {
                    Some(format!("need {} was skipped ({})", id(j), cause(up)))
                }
                Some(up) => Some(format!("{} before need {}", cause(up), id(j))),
                None if f.status == StepStatus::Skipped => {
                    Some(format!("need {} was skipped", id(j)))
                }
                None => None,
            }
        }),
        Trigger::OnFailure => {
            // With no untolerated failure upstream, a failing need is a tolerated one.
            let tolerated_need = needs
                .iter()
                .any(|&j| fate(j).is_some_and(|f| f.status.is_failure()));
            let failed = needs
                .iter()
                .any(|&j| fate(j).is_some_and(|f| f.failed.is_some()));
            if failed || tolerated_need {
                None
            } else if needs.is_empty() {
                Some("trigger on_failure without needs".to_string())
            } else if let Some(t) = needs.iter().find_map(|&j| fate(j)?.tolerated) {
                Some(format!(
                    "trigger on_failure: nothing before it failed except {}, which has continue_on_error",
                    id(t)
                ))
            } else {
                Some("trigger on_failure: nothing before it failed".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use StepStatus::{Cancelled, Failed, Simulated, Skipped, Succeeded, TimedOut};

    /// A finished DAG: each entry is (status, continue_on_error, needs), in order.
    struct Dag {
        fates: Vec<Option<Fate>>,
        ids: Vec<String>,
    }

    impl Dag {
        fn new(steps: &[(&str, StepStatus, bool, &[usize])]) -> Dag {
            let mut fates = Vec::new();
            for (i, (_, status, tolerated, needs)) in steps.iter().enumerate() {
                let fate = Fate::of(i, *status, *tolerated, needs, &fates);
                fates.push(Some(fate));
            }
            Dag {
                fates,
                ids: steps.iter().map(|(id, ..)| id.to_string()).collect(),
            }
        }

        fn skip(&self, trigger: Trigger, needs: &[usize]) -> Option<String> {
            let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            trigger_skip(trigger, needs, &self.fates, &ids)
        }
    }

    const EVERY_STATUS: [StepStatus; 6] =
        [Succeeded, Failed, TimedOut, Cancelled, Skipped, Simulated];

    #[test]
    fn always_runs_whatever_happened() {
        let none = Dag::new(&[]);
        assert_eq!(none.skip(Trigger::Always, &[]), None);
        for st in EVERY_STATUS {
            for tolerated in [false, true] {
                let dag = Dag::new(&[("a", st, tolerated, &[]), ("b", Skipped, false, &[0])]);
                assert_eq!(dag.skip(Trigger::Always, &[0]), None);
                assert_eq!(dag.skip(Trigger::Always, &[1]), None);
            }
        }
    }

    #[test]
    fn on_success_runs_after_successes_simulations_and_tolerated_failures() {
        assert_eq!(Dag::new(&[]).skip(Trigger::OnSuccess, &[]), None);
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Simulated, false, &[]),
            ("c", Failed, true, &[]),
            ("d", TimedOut, true, &[]),
            ("e", Cancelled, true, &[]),
            // A tolerated failure does not spread to descendants either.
            ("f", Succeeded, false, &[2, 3, 4]),
        ]);
        assert_eq!(dag.skip(Trigger::OnSuccess, &[0, 1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn on_success_names_the_failure_upstream() {
        let cases = [
            (Failed, "need b failed"),
            (TimedOut, "need b timed out"),
            (Cancelled, "need b was cancelled"),
        ];
        for (st, reason) in cases {
            let dag = Dag::new(&[
                ("a", Succeeded, false, &[]),
                ("b", st, false, &[]),
                ("c", Failed, false, &[]),
            ]);
            assert_eq!(
                dag.skip(Trigger::OnSuccess, &[0, 1, 2]).as_deref(),
                Some(reason)
            );
        }
    }

    #[test]
    fn on_success_is_skipped_when_any_ancestor_failed() {
        // diagnose fails → remediate is skipped because of it → the step
        // after remediate names the real cause, not its direct need.
        let dag = Dag::new(&[
            ("diagnose", Failed, false, &[]),
            ("remediate", Skipped, false, &[0]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[1]).as_deref(),
            Some("need remediate was skipped (diagnose failed)")
        );
        // Even after an on_failure step ran and succeeded in between.
        let dag = Dag::new(&[
            ("deploy", Failed, false, &[]),
            ("rollback", Succeeded, false, &[0]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[1]).as_deref(),
            Some("deploy failed before need rollback")
        );
    }

    #[test]
    fn a_skipped_need_holds_back_on_success_but_is_no_failure() {
        // Skipped by `when` (or by an on_failure that did not fire).
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Skipped, false, &[0]),
            // An `always` step after it runs, and clears the way.
            ("c", Succeeded, false, &[1]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[0, 1]).as_deref(),
            Some("need b was skipped")
        );
        assert_eq!(dag.skip(Trigger::OnSuccess, &[2]), None);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[1]).as_deref(),
            Some("trigger on_failure: nothing before it failed")
        );
        // Tolerating failures does not cover a skip.
        let dag = Dag::new(&[("a", Skipped, true, &[])]);
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[0]).as_deref(),
            Some("need a was skipped")
        );
    }

    #[test]
    fn on_failure_runs_when_any_need_failed_timed_out_or_was_cancelled() {
        for st in [Failed, TimedOut, Cancelled] {
            for tolerated in [false, true] {
                let dag = Dag::new(&[("a", Succeeded, false, &[]), ("b", st, tolerated, &[])]);
                assert_eq!(dag.skip(Trigger::OnFailure, &[0, 1]), None);
            }
        }
    }

    #[test]
    fn on_failure_runs_when_any_ancestor_failed_or_was_skipped_by_a_failure() {
        for st in [Failed, TimedOut, Cancelled] {
            // diagnose → remediate (skipped by the failure) → page_ops.
            let dag = Dag::new(&[
                ("diagnose", st, false, &[]),
                ("remediate", Skipped, false, &[0]),
            ]);
            assert_eq!(dag.skip(Trigger::OnFailure, &[1]), None);
            // diagnose → remediate (on_failure, ran) → page_ops.
            let dag = Dag::new(&[
                ("diagnose", st, false, &[]),
                ("remediate", Succeeded, false, &[0]),
            ]);
            assert_eq!(dag.skip(Trigger::OnFailure, &[1]), None);
        }
    }

    #[test]
    fn on_failure_is_skipped_when_nothing_failed() {
        let dag = Dag::new(&[
            ("a", Succeeded, false, &[]),
            ("b", Skipped, false, &[]),
            ("c", Simulated, false, &[]),
        ]);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[0, 1, 2]).as_deref(),
            Some("trigger on_failure: nothing before it failed")
        );
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[]).as_deref(),
            Some("trigger on_failure without needs")
        );
    }

    #[test]
    fn a_tolerated_failure_sets_off_only_the_on_failure_steps_that_need_it() {
        let dag = Dag::new(&[
            ("probe", Failed, true, &[]),
            ("summary", Succeeded, false, &[0]),
        ]);
        assert_eq!(dag.skip(Trigger::OnFailure, &[0]), None);
        assert_eq!(
            dag.skip(Trigger::OnFailure, &[1]).as_deref(),
            Some(
                "trigger on_failure: nothing before it failed except probe, which has continue_on_error"
            )
        );
    }

    #[test]
    fn the_nearest_untolerated_failure_is_named() {
        let dag = Dag::new(&[
            ("a", Failed, true, &[]),
            ("b", Failed, false, &[0]),
            ("c", Skipped, false, &[1]),
        ]);
        let fate = dag.fates[2].unwrap();
        assert_eq!((fate.failed, fate.tolerated), (Some(1), Some(0)));
        assert_eq!(
            dag.skip(Trigger::OnSuccess, &[2]).as_deref(),
            Some("need c was skipped (b failed)")
        );
    }
}
