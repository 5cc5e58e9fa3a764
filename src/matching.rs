//! Choosing the playbook for an incident, and explaining why the others lost.
//!
//! Every playbook (a fully checked one, or the cached summary `irctl match`
//! and `irctl run` use) is a [`Candidate`]; its matchers come first, then its
//! `match.when` expression, and of the playbooks that match the ones sharing
//! the highest priority win.

use std::collections::BTreeMap;

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
    /// Whether every condition held.
    pub matched: bool,
    /// For a playbook that did not match: the first condition that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every playbook's evaluation and the winners.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Selection {
    /// Matched playbooks first (highest priority first), then the rest by name.
    pub evaluations: Vec<Evaluation>,
    /// Names of the matched playbooks sharing the highest priority; more than one is a tie.
    pub winners: Vec<String>,
}

impl Selection {
    /// The single winner, when there is exactly one.
    pub fn winner(&self) -> Option<&str> {
        match self.winners.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
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

/// Evaluates every playbook against `incident` and picks the highest-priority matches.
pub fn select<P: Candidate>(playbooks: &[P], incident: &crate::incident::Incident) -> Selection {
    let labels = incident.match_labels();
    let value = crate::template::value(incident.to_template_value());
    let mut evaluations: Vec<Evaluation> = playbooks
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let reason = explain(p, &labels, &value);
            Evaluation {
                index,
                name: p.name().to_string(),
                priority: p.priority(),
                owner: p.owner().map(str::to_string),
                matched: reason.is_none(),
                reason,
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
            .filter(|e| e.matched)
            .map(|e| (e.priority, e.name.as_str())),
    )
    .into_iter()
    .map(str::to_string)
    .collect();
    Selection {
        evaluations,
        winners,
    }
}

/// The names of the playbooks that match an incident (its `labels` and
/// template value) at the highest priority, in the order given; more than
/// one is a tie `irctl run` refuses to break.
pub fn top_matches<'a, P: Candidate>(
    playbooks: &'a [P],
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Vec<&'a str> {
    highest_priority(
        playbooks
            .iter()
            .filter(|p| first_mismatch(*p, labels, incident).is_none())
            .map(|p| (p.priority(), p.name())),
    )
}

/// What `irctl run` runs for an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// These playbooks, each with the warning to record with its run.
    Run(Vec<(String, Option<String>)>),
    /// The playbook named is not among those given.
    Unknown(String),
    /// No playbook matches.
    NoMatch,
    /// Several playbooks tie for the best match, and running each was not asked for.
    Tie(Vec<String>),
}

/// Chooses what to run for `incident`: the playbook `named` even when it
/// does not match (recorded as a warning), else the best match; a tie runs
/// each only with `all_matching`.
pub fn choose<P: Candidate>(
    playbooks: &[P],
    incident: &crate::incident::Incident,
    named: Option<&str>,
    all_matching: bool,
) -> Choice {
    if let Some(name) = named {
        let Some(p) = playbooks.iter().find(|p| p.name() == name) else {
            return Choice::Unknown(name.to_string());
        };
        let labels = incident.match_labels();
        let value = crate::template::value(incident.to_template_value());
        let warning = explain(p, &labels, &value).map(|why| {
            format!("playbook `{name}` does not match this incident ({why}); running it because it was named")
        });
        return Choice::Run(vec![(name.to_string(), warning)]);
    }
    let selection = select(playbooks, incident);
    match selection.winners.len() {
        0 => Choice::NoMatch,
        1 => Choice::Run(selection.winners.into_iter().map(|n| (n, None)).collect()),
        _ if !all_matching => Choice::Tie(selection.winners),
        _ => Choice::Run(selection.winners.into_iter().map(|n| (n, None)).collect()),
    }
}
