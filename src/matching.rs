//! Choosing the playbook for an incident, and explaining why the others lost.
//!
//! Every playbook (a fully checked one, or the cached summary `irctl match`
//! and `irctl run` use) is a [`Candidate`]; its matchers come first, then its
//! `match.when` expression, and of the playbooks that match the ones sharing
//! the highest priority win. A `match.per_alert` playbook is tested against
//! each firing alert of a group instead (its labels over the group's common
//! ones), matches when one alert does, and runs once per matching alert.
//!
//! A `kind: routing` playbook (one that tells people rather than fixes
//! things) takes no part in that choice: every routing playbook that
//! matches runs, beside the one remediation playbook chosen, so a platform
//! team can keep one shared routing playbook for every incident.

use std::collections::BTreeMap;

use crate::incident::{Incident, Status};
use crate::playbook::matcher::{Candidate, Matcher};

/// The outcome of testing one playbook against an incident.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    /// Index into the playbook list that was evaluated.
    #[serde(skip)]
    pub index: usize,
    /// The playbook's name.
    pub name: String,
    /// Its priority.
    pub priority: i64,
    /// Its owner.
    pub owner: Option<String>,
    /// Whether every condition held (for a per-alert playbook: for at least one firing alert).
    pub matched: bool,
    /// For a playbook that did not match: the first condition that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the playbook is matched, and runs, once per firing alert.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub per_alert: bool,
    /// Whether it is `kind: routing`: it runs whenever it matches, beside
    /// the remediation playbook chosen.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub routing: bool,
    /// A per-alert playbook's evaluation against each alert of the incident.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertEvaluation>,
}

/// A per-alert playbook tested against one alert of the incident.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertEvaluation {
    /// Index into the incident's alerts.
    pub index: usize,
    /// What tells the alert apart: its fingerprint, else a hash of its labels.
    pub key: String,
    /// The alert's labels that the group does not share (`pod`, `instance`, …).
    pub distinct: BTreeMap<String, String>,
    /// Whether every condition held for this alert.
    pub matched: bool,
    /// For an alert that did not match: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every playbook's evaluation and the winners.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Selection {
    /// Matched playbooks first (highest priority first), then the rest by name.
    pub evaluations: Vec<Evaluation>,
    /// Names of the matched remediation playbooks sharing the highest
    /// priority; more than one is a tie.
    pub winners: Vec<String>,
    /// Names of the matched routing playbooks, which all run.
    pub routing: Vec<String>,
}

impl Selection {
    /// The single winner, when there is exactly one.
    pub fn winner(&self) -> Option<&str> {
        match self.winners.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The evaluation of the playbook `name`.
    pub fn get(&self, name: &str) -> Option<&Evaluation> {
        self.evaluations.iter().find(|e| e.name == name)
    }

    /// The runs the winners make: one per winner, or one per matching
    /// alert for a per-alert winner.
    pub fn runs(&self) -> Vec<Run> {
        self.runs_of(&self.winners)
    }

    /// The runs the matched routing playbooks make.
    pub fn routing_runs(&self) -> Vec<Run> {
        self.runs_of(&self.routing)
    }

    fn runs_of(&self, names: &[String]) -> Vec<Run> {
        names
            .iter()
            .filter_map(|name| self.get(name))
            .flat_map(|e| {
                let alerts: Vec<Option<usize>> = if e.per_alert {
                    e.alerts
                        .iter()
                        .filter(|a| a.matched)
                        .map(|a| Some(a.index))
                        .collect()
                } else {
                    vec![None]
                };
                alerts.into_iter().map(|alert| Run {
                    playbook: e.name.clone(),
                    warning: None,
                    alert,
                    routing: e.routing,
                })
            })
            .collect()
    }
}

/// One run `irctl run` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The playbook's name.
    pub playbook: String,
    /// The warning to record with the run (a named playbook that does not match).
    pub warning: Option<String>,
    /// For a per-alert playbook, the index of the alert it runs for:
    /// [`Incident::for_alert`](crate::incident::Incident::for_alert) gives its incident.
    pub alert: Option<usize>,
    /// Whether the playbook is `kind: routing`.
    pub routing: bool,
}

/// What an incident looks like to matchers and `when`: as a whole, or as
/// one of its alerts for per-alert playbooks.
struct Subject {
    labels: BTreeMap<String, String>,
    value: minijinja::Value,
}

impl Subject {
    fn of(incident: &Incident) -> Subject {
        Subject {
            labels: incident.match_labels(),
            value: crate::template::value(incident.to_template_value()),
        }
    }
}

/// Each alert of an incident as a [`Subject`], built once for every
/// per-alert playbook, all sharing one copy of the payload; `None` for an
/// alert that is not firing (only firing alerts select playbooks).
fn alert_subjects(incident: &Incident) -> Vec<Option<Subject>> {
    let raw = crate::template::value(&incident.raw);
    (0..incident.alerts.len())
        .map(|i| {
            let view = incident.alert_view(i)?;
            if view.status != Status::Firing {
                return None;
            }
            let mut value = view.to_template_value();
            if let Some(m) = value.as_object_mut() {
                m.remove("raw");
            }
            let shared = minijinja::context! { raw => raw.clone() };
            Some(Subject {
                labels: view.match_labels(),
                value: minijinja::value::merge_maps([crate::template::value(value), shared]),
            })
        })
        .collect()
}

/// A per-alert playbook against each alert; `None` when the playbook matches
/// at least one, else why not.
fn per_alert<P: Candidate + ?Sized>(
    playbook: &P,
    incident: &Incident,
    subjects: &[Option<Subject>],
) -> (Vec<AlertEvaluation>, Option<String>) {
    let evaluations: Vec<AlertEvaluation> = incident
        .alerts
        .iter()
        .zip(subjects)
        .enumerate()
        .map(|(index, (alert, subject))| {
            let reason = match subject {
                None => Some(format!("alert is {}, not firing", alert.status)),
                Some(s) => explain(playbook, &s.labels, &s.value),
            };
            AlertEvaluation {
                index,
                key: alert.key(),
                distinct: alert
                    .labels
                    .iter()
                    .filter(|(k, v)| incident.labels.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                matched: reason.is_none(),
                reason,
            }
        })
        .collect();
    let reason = if evaluations.iter().any(|a| a.matched) {
        None
    } else {
        Some(match evaluations.first() {
            Some(AlertEvaluation {
                reason: Some(why), ..
            }) if evaluations.len() == 1 => format!("per alert: {why}"),
            Some(AlertEvaluation {
                reason: Some(why), ..
            }) => format!(
                "per alert: none of {} alerts matches (alert #0: {why})",
                evaluations.len()
            ),
            _ => "per alert: the incident has no alerts".to_string(),
        })
    };
    (evaluations, reason)
}

/// The first condition of a playbook that fails for an incident.
enum Mismatch<'a> {
    /// A label matcher that does not hold.
    Matcher(&'a Matcher),
    /// `match.when` was false, or could not be evaluated.
    When {
        expr: &'a str,
        error: Option<crate::template::RenderError>,
    },
}

/// The one evaluation of a playbook against an incident; `None` means it matches.
/// Matchers come first: they are cheap, and most playbooks fail on one.
fn first_mismatch<'a, P: Candidate + ?Sized>(
    playbook: &'a P,
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Option<Mismatch<'a>> {
    if let Some(m) = playbook.matchers().iter().find(|m| !m.matches(labels)) {
        return Some(Mismatch::Matcher(m));
    }
    let when = playbook.when()?;
    let ctx = minijinja::context! { incident => incident.clone() };
    match crate::template::eval_bool(when, &ctx) {
        Ok(true) => None,
        Ok(false) => Some(Mismatch::When {
            expr: when,
            error: None,
        }),
        Err(e) => Some(Mismatch::When {
            expr: when,
            error: Some(e),
        }),
    }
}

/// Why `playbook` does not match, or `None` when it does.
pub fn explain<P: Candidate + ?Sized>(
    playbook: &P,
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Option<String> {
    Some(match first_mismatch(playbook, labels, incident)? {
        Mismatch::Matcher(m) => {
            let has = match labels.get(&m.name) {
                Some(v) => format!(
                    "incident has {}={}",
                    m.name,
                    serde_json::Value::String(v.clone())
                ),
                None => format!("incident has no `{}` label", m.name),
            };
            format!("{m} \u{2014} {has}")
        }
        Mismatch::When { expr, error: None } => format!("when `{}` was false", expr.trim()),
        Mismatch::When {
            expr,
            error: Some(e),
        } => format!("when `{}` failed: {e}", expr.trim()),
    })
}

/// The rule both `run` and `validate` apply: of the matching playbooks, the
/// ones sharing the highest priority win, in the order given.
fn highest_priority<'a>(matched: impl IntoIterator<Item = (i64, &'a str)>) -> Vec<&'a str> {
    let mut top: Option<i64> = None;
    let mut winners = Vec::new();
    for (priority, name) in matched {
        match top {
            Some(t) if priority < t => {}
            Some(t) if priority == t => winners.push(name),
            _ => {
                top = Some(priority);
                winners = vec![name];
            }
        }
    }
    winners
}

/// Evaluates every playbook against `incident` and picks the highest-priority
/// matches; a per-alert playbook is evaluated against each firing alert, and
/// matches when one of them does.
pub fn select<P: Candidate>(playbooks: &[P], incident: &Incident) -> Selection {
    let whole = Subject::of(incident);
    let subjects = if playbooks.iter().any(|p| p.per_alert()) {
        alert_subjects(incident)
    } else {
        Vec::new()
    };
    let mut evaluations: Vec<Evaluation> = playbooks
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let (alerts, reason) = if p.per_alert() {
                per_alert(p, incident, &subjects)
            } else {
                (Vec::new(), explain(p, &whole.labels, &whole.value))
            };
            Evaluation {
                index,
                name: p.name().to_string(),
                priority: p.priority(),
                owner: p.owner().map(str::to_string),
                matched: reason.is_none(),
                reason,
                per_alert: p.per_alert(),
                routing: p.routing(),
                alerts,
            }
        })
        .collect();
    evaluations.sort_by(|a, b| {
        b.matched
            .cmp(&a.matched)
            .then(if a.matched {
                b.priority.cmp(&a.priority)
            } else {
                std::cmp::Ordering::Equal
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    let winners = highest_priority(
        evaluations
            .iter()
            .filter(|e| e.matched && !e.routing)
            .map(|e| (e.priority, e.name.as_str())),
    )
    .into_iter()
    .map(str::to_string)
    .collect();
    let routing = evaluations
        .iter()
        .filter(|e| e.matched && e.routing)
        .map(|e| e.name.clone())
        .collect();
    Selection {
        evaluations,
        winners,
        routing,
    }
}

/// The names of the remediation playbooks that match an incident (its
/// `labels` and template value) at the highest priority, in the order
/// given; more than one is a tie `irctl run` refuses to break.
pub fn top_matches<'a, P: Candidate>(
    playbooks: &'a [P],
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Vec<&'a str> {
    highest_priority(
        playbooks
            .iter()
            .filter(|p| !p.routing() && first_mismatch(*p, labels, incident).is_none())
            .map(|p| (p.priority(), p.name())),
    )
}

/// What `irctl run` runs for an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// These runs, in order: the routing playbooks' first.
    Run(Vec<Run>),
    /// The playbook named is not among those given.
    Unknown(String),
    /// No playbook matches.
    NoMatch,
    /// Several playbooks tie for the best match, and running each was not asked for.
    Tie(Vec<String>),
}

/// Chooses what to run for `incident`: the playbook `named` even when it
/// does not match (recorded as a warning), else the best match; a tie runs
/// each only with `all_matching`. Every matching routing playbook runs too,
/// first (so telling people never waits for a long remediation), and
/// alone when no remediation playbook matches; with a named playbook only
/// that one runs. A per-alert playbook runs once per
/// firing alert it matches (named and matching none: once per firing alert,
/// each with a warning).
pub fn choose<P: Candidate>(
    playbooks: &[P],
    incident: &Incident,
    named: Option<&str>,
    all_matching: bool,
) -> Choice {
    if let Some(name) = named {
        let Some(p) = playbooks.iter().position(|p| p.name() == name) else {
            return Choice::Unknown(name.to_string());
        };
        return Choice::Run(named_runs(&playbooks[p..=p], incident));
    }
    let selection = select(playbooks, incident);
    let mut runs = selection.routing_runs();
    match selection.winners.len() {
        0 if runs.is_empty() => return Choice::NoMatch,
        0 | 1 => {}
        _ if !all_matching => return Choice::Tie(selection.winners),
        _ => {}
    }
    runs.extend(selection.runs());
    Choice::Run(runs)
}

/// The runs of the one playbook in `named`, matching or not.
fn named_runs<P: Candidate>(named: &[P], incident: &Incident) -> Vec<Run> {
    let selection = select(named, incident);
    let Some(e) = selection.evaluations.first() else {
        return Vec::new();
    };
    let warn = |why: &str| {
        Some(format!(
            "playbook `{}` does not match this incident ({why}); running it because it was named",
            e.name
        ))
    };
    if !e.per_alert {
        return vec![Run {
            playbook: e.name.clone(),
            warning: e.reason.as_deref().and_then(warn),
            alert: None,
            routing: e.routing,
        }];
    }
    if e.matched {
        return selection.runs();
    }
    let firing: Vec<&AlertEvaluation> = e
        .alerts
        .iter()
        .filter(|a| incident.alerts[a.index].status == Status::Firing)
        .collect();
    let alerts = if firing.is_empty() {
        e.alerts.iter().collect()
    } else {
        firing
    };
    alerts
        .into_iter()
        .map(|a| Run {
            playbook: e.name.clone(),
            warning: a.reason.as_deref().and_then(warn),
            alert: Some(a.index),
            routing: e.routing,
        })
        .collect()
}

/// What sets a run of `playbook` for `incident` apart from the playbook's
/// other runs for the same incident (and episode): the alert in hand's key
/// (fingerprint, else a hash of its labels) for a per-alert playbook, whose
/// `incident` is the one [`Incident::for_alert`] gives; `None` for a
/// playbook that runs once per incident. Runs are deduplicated on it.
pub fn alert_key<P: Candidate + ?Sized>(playbook: &P, incident: &Incident) -> Option<String> {
    if playbook.per_alert() {
        incident.alert_key()
    } else {
        None
    }
}
