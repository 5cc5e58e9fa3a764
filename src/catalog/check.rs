//! What `irctl validate` reports about a catalog beyond reading it (bad
//! YAML, malformed references and duplicate entities are found by
//! [`super::load`]).
//!
//! Errors are what make irctl answer wrongly: a `spec.owner`, `spec.system`,
//! `spec.dependsOn` or `spec.dependencyOf` naming no entity (an incident
//! would go to nobody, or impact would stop short), an owner that is not a
//! Group or User, an alert selector that does not parse. Warnings are what
//! irctl survives: org-chart references (`parent`, `children`, `members`,
//! `memberOf`, `domain`) to entities kept elsewhere, a service without an
//! owner (CODEOWNERS is the fallback), a dependency cycle (impact stops at
//! each entity once), a platform team missing from the catalog.

use std::collections::{BTreeMap, BTreeSet};

use super::Catalog;
use super::model::{self, Entity, Written};
use super::refs::EntityRef;
use crate::diagnostic::{Diagnostic, did_you_mean};

/// Every finding about `catalog`'s entities, in file order.
pub fn check(catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for e in catalog.entities.values() {
        references(catalog, e, &mut out);
        ownership(catalog, e, &mut out);
        selector(e, &mut out);
    }
    cycles(catalog, &mut out);
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out
}

/// What playbooks say about the catalog: a `notify: { team: owner|impacted }`
/// with no catalog to say who that is is an error; with a catalog, an
/// `owner:` that names no Group of it is a warning (the catalog, not the
/// playbook, decides who owns an incident, so the two should agree).
pub fn playbooks(
    catalog: Option<&Catalog>,
    playbooks: &[crate::playbook::Playbook],
) -> Vec<Diagnostic> {
    use crate::playbook::StepAction;
    let mut out = Vec::new();
    for p in playbooks {
        let file = &p.provenance.path;
        if catalog.is_none() {
            for step in p.steps.iter().chain(&p.on_resolved) {
                let StepAction::Notify(n) = &step.action else {
                    continue;
                };
                let Some(team) = n
                    .team
                    .as_ref()
                    .filter(|t| crate::teams::KEYWORDS.contains(&t.value.trim()))
                else {
                    continue;
                };
                out.push(
                    Diagnostic::error(file, team.pos, "needs-catalog", crate::teams::needs_catalog(team.value.trim()))
                        .with_help(format!("add `{}` (Backstage catalog files) beside the playbooks, or pass `--catalog`", super::ENTRY_FILE))
                        .with_width(team.value.len()),
                );
            }
        }
        let (Some(catalog), Some(owner)) = (catalog, &p.owner) else {
            continue;
        };
        let known = EntityRef::parse(
            owner,
            Some(super::refs::TEAM_KIND),
            super::refs::DEFAULT_NAMESPACE,
        )
        .ok()
        .filter(|r| catalog.get(r).is_some_and(|e| e.kind == model::Kind::Group));
        if known.is_none() {
            let groups = catalog
                .entities
                .keys()
                .filter(|r| r.kind == super::refs::TEAM_KIND)
                .map(|r| r.to_string())
                .collect::<Vec<_>>();
            out.push(
                Diagnostic::warning(
                    file,
                    p.name_pos,
                    "unknown-owner",
                    format!(
                        "playbook `{}` has `owner: {owner}`, which is no Group of the catalog",
                        p.name
                    ),
                )
                .with_help(
                    did_you_mean(owner, groups.iter().map(String::as_str)).unwrap_or_else(|| {
                        "name a Group of the catalog (`group:default/NAME`)".into()
                    }),
                ),
            );
        }
    }
    out
}

/// Fields whose unknown references are errors.
const ROUTING_FIELDS: &[&str] = &[
    "spec.owner",
    "spec.system",
    "spec.dependsOn",
    "spec.dependencyOf",
];

fn references(catalog: &Catalog, e: &Entity, out: &mut Vec<Diagnostic>) {
    for (field, w) in e.references() {
        if catalog.get(&w.target).is_some() {
            continue;
        }
        let message = format!(
            "`{field}: {}` names `{}`, which is not in the catalog",
            w.text, w.target
        );
        let d = if ROUTING_FIELDS.contains(&field) {
            Diagnostic::error(&e.file, w.pos, "unknown-entity", message)
        } else {
            Diagnostic::warning(&e.file, w.pos, "unknown-entity", message)
        };
        let same_kind = catalog
            .entities
            .keys()
            .filter(|r| r.kind == w.target.kind && r.namespace == w.target.namespace)
            .map(|r| r.name.as_str());
        out.push(
            d.with_optional_help(did_you_mean(&w.target.name, same_kind))
                .with_width(w.text.chars().count()),
        );
    }
    if let Some(o) = &e.owner
        && !matches!(o.target.kind.as_str(), "group" | "user")
    {
        out.push(
            Diagnostic::error(
                &e.file,
                o.pos,
                "owner-kind",
                format!(
                    "`spec.owner: {}` names a {}, not a Group or User",
                    o.text, o.target.kind
                ),
            )
            .with_width(o.text.chars().count()),
        );
    }
}

fn ownership(catalog: &Catalog, e: &Entity, out: &mut Vec<Diagnostic>) {
    if !e.kind.is_service() {
        return;
    }
    if catalog.platform_reason(e).is_some() {
        if catalog.get(&catalog.settings.platform_team).is_none() {
            out.push(
                Diagnostic::warning(
                    &e.file,
                    e.name_pos,
                    "unknown-entity",
                    format!(
                        "alerts about `{}` go to the platform team `{}`, which is not in the catalog",
                        e.entity_ref, catalog.settings.platform_team
                    ),
                )
                .with_help(format!(
                    "define the Group, or name another with the `{}` annotation on the entry file's Location",
                    super::setting::PLATFORM_TEAM
                )),
            );
        }
        return;
    }
    let system_owned = e
        .system
        .as_ref()
        .and_then(|s| catalog.get(&s.target))
        .is_some_and(|s| s.owner.is_some());
    if e.owner.is_none() && !system_owned {
        out.push(
            Diagnostic::warning(
                &e.file,
                e.name_pos,
                "no-owner",
                format!(
                    "`{}` has no `spec.owner` (nor has its system)",
                    e.entity_ref
                ),
            )
            .with_help("incidents about it fall back to CODEOWNERS; add `spec.owner: TEAM`")
            .with_width(e.name.chars().count()),
        );
    }
}

fn selector(e: &Entity, out: &mut Vec<Diagnostic>) {
    let Some(text) = e.annotations.get(model::ALERT_SELECTOR) else {
        return;
    };
    let pos = e
        .annotation_pos
        .get(model::ALERT_SELECTOR)
        .copied()
        .unwrap_or(e.pos);
    match super::resolve::parse_selector(text) {
        Ok(m) if m.is_empty() => out.push(Diagnostic::error(
            &e.file,
            pos,
            "alert-selector",
            "the alert selector is empty; it would match nothing",
        )),
        Ok(_) if !e.kind.is_service() => out.push(Diagnostic::warning(
            &e.file,
            pos,
            "alert-selector",
            format!(
                "`{}` is not a Component, Resource, System or API; alerts are never about it",
                e.entity_ref
            ),
        )),
        Ok(_) => {}
        Err(why) => out.push(
            Diagnostic::error(&e.file, pos, "alert-selector", format!("bad `{}`: {why}", model::ALERT_SELECTOR))
                .with_help(r#"write Alertmanager matchers, e.g. `service="orders", severity=~"critical|warning"`"#),
        ),
    }
}

/// Every dependency loop once, printed whole: `a -> b -> c -> a`.
fn cycles(catalog: &Catalog, out: &mut Vec<Diagnostic>) {
    // X depends on Y: X's `dependsOn` names Y, or Y's `dependencyOf` names X.
    let mut edges: BTreeMap<&EntityRef, Vec<(&EntityRef, &Entity, &Written)>> = BTreeMap::new();
    for e in catalog.entities.values() {
        for w in &e.depends_on {
            edges
                .entry(&e.entity_ref)
                .or_default()
                .push((&w.target, e, w));
        }
        for w in &e.dependency_of {
            edges
                .entry(&w.target)
                .or_default()
                .push((&e.entity_ref, e, w));
        }
    }
    let mut done: BTreeSet<&EntityRef> = BTreeSet::new();
    let mut reported: BTreeSet<BTreeSet<&EntityRef>> = BTreeSet::new();
    for start in catalog.entities.keys() {
        if done.contains(start) {
            continue;
        }
        // Iterative DFS: (node, next edge index); `path` is the gray stack.
        let mut stack: Vec<(&EntityRef, usize)> = vec![(start, 0)];
        let mut on_path: Vec<&EntityRef> = vec![start];
        while let Some((node, i)) = stack.last_mut() {
            let node: &EntityRef = node;
            let next = edges.get(node).and_then(|es| es.get(*i));
            *i += 1;
            match next {
                None => {
                    done.insert(node);
                    stack.pop();
                    on_path.pop();
                }
                Some((to, entity, w)) => {
                    if let Some(at) = on_path.iter().position(|n| n == to) {
                        let members: BTreeSet<&EntityRef> = on_path[at..].iter().copied().collect();
                        if reported.insert(members) {
                            let path: Vec<String> = on_path[at..]
                                .iter()
                                .chain(std::iter::once(to))
                                .map(|r| r.to_string())
                                .collect();
                            out.push(
                                Diagnostic::warning(
                                    &entity.file,
                                    w.pos,
                                    "dependency-cycle",
                                    format!("dependency cycle: {}", path.join(" -> ")),
                                )
                                .with_help("impact stops at each entity once; break the loop if it is a mistake")
                                .with_width(w.text.chars().count()),
                            );
                        }
                    } else if !done.contains(to) && catalog.get(to).is_some() {
                        stack.push((to, 0));
                        on_path.push(to);
                    }
                }
            }
        }
    }
}
