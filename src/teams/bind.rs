//! Connecting a playbook set to its teams: each `notify: { team: … }` step
//! gets the team's channels, and its playbook the channels' secrets (so a
//! run resolves them before anything runs, like any declared secret).
//!
//! What does not fit is a finding on the playbook's file: a malformed
//! reference, a team the file does not list (or no teams file at all). The
//! catalog keywords `owner`/`impacted` name teams only an incident can
//! tell: such a step gets the whole file (its roster), and the run picks
//! the teams ([`crate::engine::team::target`]). A playbook with such an
//! error is taken out of the set, as a file with errors yields no playbook.
//! A secret a playbook declares and uses only through its teams' channels
//! is used: its `unused-secret` warning is withdrawn.

use std::collections::BTreeSet;

use std::sync::Arc;

use super::{EntityRef, KEYWORDS, Teams};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::playbook::{PlaybookSet, Step, StepAction};

/// Binds every team step of `set` to `teams`, reporting into
/// `set.diagnostics`; `file` is the teams file found, even when it did not
/// check cleanly (its own findings say why).
pub fn bind(set: &mut PlaybookSet, teams: Option<&Teams>, file_found: Option<&str>) {
    let mut broken: BTreeSet<String> = BTreeSet::new();
    let roster = teams.map(|t| Arc::new(t.clone()));
    for playbook in &mut set.playbooks {
        let file = playbook.provenance.path.clone();
        let teams_file = file_found;
        let mut needed: Vec<String> = Vec::new();
        let steps = playbook
            .steps
            .iter_mut()
            .chain(playbook.on_resolved.iter_mut());
        for step in steps {
            match bind_step(step, teams, roster.as_ref(), teams_file, &file) {
                Ok(Some(secrets)) => needed.extend(secrets),
                Ok(None) => {}
                Err(d) => {
                    set.diagnostics.push(*d);
                    broken.insert(playbook.name.clone());
                }
            }
        }
        set.diagnostics.retain(|d| {
            !(d.code == "unused-secret"
                && d.file == file
                && secret_named(&d.message).is_some_and(|s| needed.contains(&s)))
        });
        for s in needed {
            if !playbook.secrets.contains(&s) {
                playbook.secrets.push(s);
            }
        }
    }
    set.playbooks.retain(|p| !broken.contains(&p.name));
}

/// Binds one step; the secrets its team needs, if it notifies one.
fn bind_step(
    step: &mut Step,
    teams: Option<&Teams>,
    roster: Option<&Arc<Teams>>,
    teams_file: Option<&str>,
    file: &str,
) -> Result<Option<Vec<String>>, Box<Diagnostic>> {
    let StepAction::Notify(n) = &mut step.action else {
        return Ok(None);
    };
    let Some(written) = &n.team else {
        return Ok(None);
    };
    let value = written.value.trim();
    let at = |code, msg: String| {
        Box::new(Diagnostic::error(file, written.pos, code, msg).with_width(written.value.len()))
    };
    if KEYWORDS.contains(&value) {
        // Its channels' secrets are not required: a team whose secret is
        // not set is skipped, and recorded so, rather than failing the run.
        n.roster = roster.cloned();
        return Ok(None);
    }
    let reference = EntityRef::team(value)
        .map_err(|m| at("invalid-team-ref", m))?
        .to_string();
    let Some(teams) = teams else {
        if let Some(found) = teams_file {
            return Err(at(
                "unknown-team",
                format!("team `{reference}`: `{found}` has errors, so no team can be found in it"),
            ));
        }
        return Err(Box::new(
            Diagnostic::error(
                file,
                written.pos,
                "unknown-team",
                format!("team `{reference}`: the playbook folder has no teams file"),
            )
            .with_help(format!(
                "add `teams.yaml` (or `catalog/teams.yaml`) listing `{reference}` and its channels"
            ))
            .with_width(written.value.len()),
        ));
    };
    let Some(team) = teams.teams.get(&reference) else {
        return Err(Box::new(
            Diagnostic::error(
                file,
                written.pos,
                "unknown-team",
                format!("team `{reference}` is not in `{}`", teams.file),
            )
            .with_optional_help(did_you_mean(
                &reference,
                teams.teams.keys().map(String::as_str),
            ))
            .with_width(written.value.len()),
        ));
    };
    n.bound = Some(team.clone());
    Ok(Some(team.secrets()))
}

/// The secret an `unused-secret` finding is about (its first backticked name).
fn secret_named(message: &str) -> Option<String> {
    let rest = message.split_once('`')?.1;
    Some(rest.split_once('`')?.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finding_names_its_secret() {
        assert_eq!(
            secret_named("secret `SLACK_DBA` is declared but never used").as_deref(),
            Some("SLACK_DBA")
        );
        assert_eq!(secret_named("no name"), None);
    }
}
