//! Aiming a test's `notify: { team: owner|impacted }` steps as `irctl run`
//! aims them for the same incident: the catalog gives the incident its
//! owner and impacted services, `teams.yaml` says how each team is reached,
//! and [`crate::engine::team::target`] picks the teams and channels.
//!
//! Two things differ from a real run, both so a test is the same on every
//! machine and changes nothing: no impact notice was sent before (the
//! incident log is never read or written), and a channel's secret is set
//! only when the test gives it — in its `secrets:`, or through the
//! `test-secret-NAME` default of a secret the playbook declares — never
//! from the environment. A channel without one is skipped, and said, as a
//! run with the secret unset skips it.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::id::StepId;
use crate::incident::Incident;
use crate::playbook::test_check::team_keyword;
use crate::playbook::{Playbook, StepAction};
use crate::secret::Secret;
use crate::teams::Teams;

use super::Case;

/// What aims team steps: the service catalog and the teams file, as the
/// playbook folder (or `--catalog`) gives them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Routing<'a> {
    /// The catalog; `None` when there is none (owners are then unknown).
    pub catalog: Option<&'a Catalog>,
    /// The teams file, when it checks cleanly.
    pub teams: Option<&'a Teams>,
}

/// Whom a team step sends to: canonical team references and `kind:SECRET` channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The teams reached on at least one channel.
    pub teams: BTreeSet<String>,
    /// The channels, `kind:SECRET_NAME`.
    pub channels: BTreeSet<String>,
}

/// One test's run, aimed.
#[derive(Clone, Debug)]
pub struct Aimed {
    /// The playbook with its team steps aimed, when it has any.
    pub playbook: Option<Playbook>,
    /// The incident with its ownership, when there is a catalog.
    pub incident: Option<Incident>,
    /// The secrets the run sees: the test's, the declared ones' defaults.
    pub secrets: BTreeMap<String, Secret>,
    /// Teams nobody could tell and channels skipped, as a run warns of them.
    pub notes: Vec<String>,
    /// Whom each team step sends to if it runs.
    pub reach: BTreeMap<StepId, Reach>,
}

/// Aims `case`'s run of `playbook`.
pub fn aim(playbook: &Playbook, case: &Case, routing: Routing<'_>) -> Aimed {
    let incident = routing
        .catalog
        .map(|c| c.own(&case.incident, &playbook.provenance.path, routing.teams));
    let ownership = incident.as_ref().and_then(|i| i.ownership.as_deref());
    let keyworded = playbook
        .steps
        .iter()
        .chain(&playbook.on_resolved)
        .any(|s| team_keyword(s).is_some());
    let mut notes = Vec::new();
    let targeted = keyworded.then(|| {
        let mut targeted = playbook.clone();
        let given = |name: &str| case.secrets.contains_key(name);
        let targets =
            crate::engine::team::target(&mut targeted, ownership, &BTreeSet::new(), &given);
        notes = targets.warnings;
        for s in targets.secrets {
            if !targeted.secrets.contains(&s) {
                targeted.secrets.push(s);
            }
        }
        targeted
    });
    let aimed = targeted.as_ref().unwrap_or(playbook);
    // A team named by reference adds its secrets to the playbook when it is
    // bound, after inline tests were read: they get the default too.
    let mut secrets = case.secrets.clone();
    for s in &aimed.secrets {
        secrets
            .entry(s.clone())
            .or_insert_with(|| Secret::new(format!("test-secret-{s}")));
    }
    Aimed {
        reach: reach(aimed),
        playbook: targeted,
        incident,
        secrets,
        notes,
    }
}

/// Whom each `notify: { team }` step of an aimed playbook sends to.
fn reach(playbook: &Playbook) -> BTreeMap<StepId, Reach> {
    let mut out = BTreeMap::new();
    for step in playbook.steps.iter().chain(&playbook.on_resolved) {
        let StepAction::Notify(n) = &step.action else {
            continue;
        };
        if n.team.is_none() {
            continue;
        }
        let teams: Vec<&crate::teams::Team> = if team_keyword(step).is_some() {
            n.recipients.iter().map(|r| &r.team).collect()
        } else {
            n.bound.iter().collect()
        };
        let mut r = Reach::default();
        for team in teams.into_iter().filter(|t| !t.channels.is_empty()) {
            r.teams.insert(team.reference.clone());
            r.channels.extend(
                team.channels
                    .iter()
                    .map(|c| format!("{}:{}", c.kind.as_str(), c.secret)),
            );
        }
        out.insert(step.id.clone(), r);
    }
    out
}
