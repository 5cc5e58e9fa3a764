//! Drill lints `irctl validate` runs across the whole set: whether each
//! drill would exercise the playbook it belongs to, as a real alert would.
//!
//! They need every playbook at once, so they run after each file is checked,
//! and only when validating (not on every `run`).

use crate::diagnostic::Diagnostic;
use crate::matching;
use crate::playbook::Playbook;

/// Checks every drill incident in the set: a playbook whose own drill does
/// not select it (`never-matches`), and drills that several playbooks tie for
/// at the top priority (`ambiguous-match`), which `irctl run` would refuse.
pub fn check(playbooks: &[Playbook]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for p in playbooks {
        let Some(drill) = &p.drill else {
            continue;
        };
        let incident = &drill.incident;
        let labels = incident.match_labels();
        let value = crate::template::value(incident.to_template_value());
        if let Some(why) = matching::explain(p, &labels, &value) {
            diags.push(
                Diagnostic::warning(
                    p.file(),
                    drill.incident_pos,
                    "never-matches",
                    format!("the drill incident of `{}` does not match it: {why}", p.name),
                )
                .with_help("fix `match` or the drill's incident, or the drill exercises a playbook no real alert would select"),
            );
            continue;
        }
        let winners = matching::top_matches(playbooks, &labels, &value);
        if winners.len() > 1 {
            diags.push(
                Diagnostic::warning(
                    p.file(),
                    drill.incident_pos,
                    "ambiguous-match",
                    format!(
                        "the drill incident of `{}` matches {} at the same priority: {}",
                        p.name,
                        winners.len(),
                        winners.join(", ")
                    ),
                )
                .with_help("give one of them a higher `priority` or narrower `match`, so `irctl run` can choose"),
            );
        }
    }
    diags
}
