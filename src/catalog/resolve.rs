//! From an alert to the service it is about, to the team that owns the
//! incident, to the services impacted downstream.
//!
//! The service, first rule that finds one:
//! 1. `alert-selector`: an entity whose `irctl.dev/alert-selector`
//!    annotation (Alertmanager matchers, all must hold) matches the alert's
//!    labels; when several do, the one with the most matchers;
//! 2. `label`: the value of the first service label the alert has
//!    (`service`, `app.kubernetes.io/name` by default) names an entity — a
//!    full reference, or a name looked up as Component, Resource, System, API.
//!
//! The owner, first rule that decides:
//! 1. `platform`: the service is a Resource, or a Component whose
//!    `spec.type` is a platform type (`infrastructure`, `platform`) or that is
//!    annotated `irctl.dev/platform: "true"` — the platform team owns it;
//! 2. `catalog`: the service's `spec.owner` (else its System's);
//! 3. `codeowners`: the owner CODEOWNERS gives the playbook file answering it.
//!
//! Impact follows `spec.dependencyOf` and reverse `spec.dependsOn` from the
//! service, breadth-first, up to the depth limit, each entity once (cycles
//! end there). Every value here comes from files and labels, so templates
//! treat it as untrusted, like labels.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Catalog;
use super::model::{self, Entity, Kind};
use super::refs::{DEFAULT_NAMESPACE, EntityRef};
use crate::incident::Incident;
use crate::playbook::matcher::Matcher;

/// Who owns an incident and what it impacts (`incident.owner`, `incident.impacted`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ownership {
    /// The catalog entity the alert is about.
    pub service: Option<Service>,
    /// The owning team (or person).
    pub owner: Option<Owner>,
    /// How each rule decided, in order, as sentences.
    pub why: Vec<String>,
    /// Services downstream of the service, nearest first.
    pub impacted: Vec<Impacted>,
}

/// The entity an alert is about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Service {
    /// Its canonical reference.
    #[serde(rename = "ref")]
    pub entity_ref: EntityRef,
    /// Its kind as Backstage writes it (`component`, `resource`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// Which rule found it: `alert-selector` or `label`.
    pub rule: String,
}

/// The team (or person) that owns the incident.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Owner {
    /// Canonical reference (`group:default/platform`), the key teams are reached by.
    #[serde(rename = "ref")]
    pub entity_ref: EntityRef,
    /// Its name.
    pub name: String,
    /// Its display name.
    pub title: String,
    /// Its `spec.profile.email`, when the catalog has one.
    pub email: Option<String>,
    /// The service's (else the team's) `pagerduty.com/service-id`.
    pub pagerduty_service: Option<String>,
    /// Names of the channels that reach it (filled from the teams file;
    /// empty when nothing says how to reach the team).
    pub channels: Vec<String>,
    /// Which rule decided: `platform`, `catalog` or `codeowners`.
    pub rule: String,
    /// The deciding rule, as a sentence.
    pub why: String,
    /// Whether the catalog defines the team.
    pub in_catalog: bool,
}

/// A team as named on an impacted service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Team {
    /// Canonical reference.
    #[serde(rename = "ref")]
    pub entity_ref: EntityRef,
    /// Its name.
    pub name: String,
    /// Its display name.
    pub title: String,
}

/// A service reached downstream of the one alerting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Impacted {
    /// Canonical reference.
    #[serde(rename = "ref")]
    pub entity_ref: EntityRef,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// Dependency hops from the alerting service (1 = depends on it directly).
    pub depth: usize,
    /// The entity it depends on that brought it in.
    pub via: EntityRef,
    /// Its owner, when it has one.
    pub owner: Option<Team>,
}

impl Ownership {
    /// Fills the owner's `channels` from the teams file: how the owner is
    /// reached, as `kind:SECRET_NAME` (names, never values).
    pub fn reach(&mut self, teams: Option<&crate::teams::Teams>) {
        let Some(owner) = &mut self.owner else {
            return;
        };
        owner.channels = teams
            .and_then(|t| t.teams.get(&owner.entity_ref.to_string()))
            .map(|team| {
                team.channels
                    .iter()
                    .map(|c| format!("{}:{}", c.kind.as_str(), c.secret))
                    .collect()
            })
            .unwrap_or_default();
    }

    /// The `owner` and `impacted` values templates see as `incident.owner`
    /// (null when nobody owns it; `service` inside) and `incident.impacted`.
    pub fn template_values(&self) -> (serde_json::Value, serde_json::Value) {
        let owner = match &self.owner {
            Some(o) => {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.insert(
                        "service".into(),
                        serde_json::to_value(&self.service).unwrap_or_default(),
                    );
                }
                v
            }
            None => serde_json::Value::Null,
        };
        let impacted = serde_json::to_value(&self.impacted).unwrap_or_default();
        (owner, impacted)
    }

    /// The ownership a run recorded, read back from its `incident.owner`
    /// and `incident.impacted` (so a resumed run sees what the first saw);
    /// `None` when it recorded neither.
    pub fn from_template_values(
        owner: &serde_json::Value,
        impacted: &serde_json::Value,
    ) -> Option<Ownership> {
        if owner.is_null() && impacted.as_array().is_none_or(Vec::is_empty) {
            return None;
        }
        Some(Ownership {
            service: owner
                .get("service")
                .and_then(|s| Service::deserialize(s).ok()),
            owner: Owner::deserialize(owner).ok(),
            why: Vec::new(),
            impacted: Vec::<Impacted>::deserialize(impacted).unwrap_or_default(),
        })
    }
}

/// A service found for an alert: the entity, the rule and why.
type Found<'c> = (&'c Entity, &'static str, String);

/// The services of an entity kind, in the order a bare name is looked up.
const SERVICE_KINDS: &[&str] = &["component", "resource", "system", "api"];

impl Catalog {
    /// `incident` carrying its [`Ownership`] (as [`Catalog::resolve`] gives
    /// it) with the owner's channels from `teams`: the incident a run of the
    /// playbook file `playbook_path` sees as `incident.owner`/`impacted`.
    pub fn own(
        &self,
        incident: &Incident,
        playbook_path: &str,
        teams: Option<&crate::teams::Teams>,
    ) -> Incident {
        let mut ownership = self.resolve(incident, Some(playbook_path));
        ownership.reach(teams);
        let mut owned = incident.clone();
        owned.ownership = Some(std::sync::Arc::new(ownership));
        owned
    }

    /// Who owns `incident` answered by the playbook file `playbook_path`
    /// (for the CODEOWNERS fallback), and what it impacts.
    pub fn resolve(&self, incident: &Incident, playbook_path: Option<&str>) -> Ownership {
        let mut out = Ownership::default();
        let mut label_sets = vec![incident.match_labels()];
        // An alert group whose common labels name no service: its alerts may.
        label_sets.extend(incident.alerts.iter().map(|a| {
            let mut l = incident.match_labels();
            l.extend(a.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            l
        }));
        let found = label_sets
            .iter()
            .find_map(|labels| self.by_selector(labels))
            .or_else(|| {
                label_sets
                    .iter()
                    .find_map(|labels| self.by_label(labels, &mut out.why))
            });
        let service = found.map(|(entity, rule, why)| {
            out.why.push(why);
            (entity, rule)
        });
        let (service, rule) = match service {
            Some((e, r)) => (Some(e), r),
            None => (None, ""),
        };
        if service.is_none() && out.why.is_empty() {
            out.why.push(format!(
                "no catalog entity matches the alert (no `{}` annotation matched, no label among {})",
                model::ALERT_SELECTOR,
                self.settings
                    .service_labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.owner = match service {
            Some(s) => self.owner_of_service(s, &mut out.why),
            None => None,
        }
        .or_else(|| self.owner_by_codeowners(playbook_path, &mut out.why));
        if let Some(s) = service {
            out.service = Some(Service {
                entity_ref: s.entity_ref.clone(),
                kind: s.entity_ref.kind.clone(),
                name: s.name.clone(),
                title: s.title.clone(),
                rule: rule.into(),
            });
            out.impacted = self.impacted(&s.entity_ref);
        }
        if let Some(owner) = &mut out.owner {
            owner.pagerduty_service = service
                .and_then(|s| s.annotations.get(model::PAGERDUTY_SERVICE))
                .or_else(|| {
                    self.get(&owner.entity_ref)
                        .and_then(|t| t.annotations.get(model::PAGERDUTY_SERVICE))
                })
                .cloned();
        }
        out
    }

    /// The entity whose alert selector matches `labels` best.
    fn by_selector(&self, labels: &BTreeMap<String, String>) -> Option<Found<'_>> {
        let mut best: Option<(&Entity, usize, &str)> = None;
        for e in self.entities.values().filter(|e| e.kind.is_service()) {
            let Some(selector) = e.annotations.get(model::ALERT_SELECTOR) else {
                continue;
            };
            let Ok(matchers) = parse_selector(selector) else {
                continue;
            };
            if matchers.is_empty() || !matchers.iter().all(|m| m.matches(labels)) {
                continue;
            }
            if best.is_none_or(|(_, n, _)| matchers.len() > n) {
                best = Some((e, matchers.len(), selector));
            }
        }
        best.map(|(e, _, selector)| {
            (
                e,
                "alert-selector",
                format!(
                    "`{}` matches `{}: {selector}`",
                    e.entity_ref,
                    model::ALERT_SELECTOR
                ),
            )
        })
    }

    /// The entity a service label names.
    fn by_label<'c>(
        &'c self,
        labels: &BTreeMap<String, String>,
        why: &mut Vec<String>,
    ) -> Option<Found<'c>> {
        for label in &self.settings.service_labels {
            let Some(value) = labels.get(label).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let shown = serde_json::Value::String(value.clone());
            if let Some(e) = self.named(value) {
                return Some((
                    e,
                    "label",
                    format!("label `{label}={shown}` names `{}`", e.entity_ref),
                ));
            }
            let note = format!("label `{label}={shown}` names no catalog entity");
            if !why.contains(&note) {
                why.push(note);
            }
        }
        None
    }

    /// The service `text` names: a full reference, else a name in the
    /// default namespace looked up kind by kind.
    fn named(&self, text: &str) -> Option<&Entity> {
        if text.contains(':')
            && let Ok(r) = EntityRef::parse(text, None, DEFAULT_NAMESPACE)
        {
            return self.get(&r).filter(|e| e.kind.is_service());
        }
        SERVICE_KINDS.iter().find_map(|kind| {
            EntityRef::parse(text, Some(kind), DEFAULT_NAMESPACE)
                .ok()
                .and_then(|r| self.get(&r))
                .filter(|e| e.kind.is_service())
        })
    }

    /// Whether alerts about `e` go to the platform team, and why.
    pub fn platform_reason(&self, e: &Entity) -> Option<String> {
        if e.kind == Kind::Resource {
            return Some(format!("`{}` is a Resource", e.entity_ref));
        }
        if e.kind != Kind::Component {
            return None;
        }
        if e.annotations
            .get(model::PLATFORM)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Some(format!(
                "`{}` is annotated `{}: \"true\"`",
                e.entity_ref,
                model::PLATFORM
            ));
        }
        let t = e.spec_type.as_deref()?;
        self.settings
            .platform_types
            .iter()
            .any(|p| p == t)
            .then(|| format!("`{}` has `spec.type: {t}`", e.entity_ref))
    }

    fn owner_of_service(&self, s: &Entity, why: &mut Vec<String>) -> Option<Owner> {
        if let Some(reason) = self.platform_reason(s) {
            let team = self.settings.platform_team.clone();
            let sentence = format!("{reason}, so the platform team `{team}` owns it");
            why.push(sentence.clone());
            return Some(self.owner(team, "platform", sentence));
        }
        if let Some(o) = &s.owner {
            let sentence = format!("`{}` has `spec.owner: {}`", s.entity_ref, o.text);
            why.push(sentence.clone());
            return Some(self.owner(o.target.clone(), "catalog", sentence));
        }
        let system = s.system.as_ref().and_then(|w| self.get(&w.target));
        if let Some((sys, o)) = system.and_then(|sys| sys.owner.as_ref().map(|o| (sys, o))) {
            let sentence = format!(
                "`{}` has no `spec.owner`; its system `{}` has `spec.owner: {}`",
                s.entity_ref, sys.entity_ref, o.text
            );
            why.push(sentence.clone());
            return Some(self.owner(o.target.clone(), "catalog", sentence));
        }
        why.push(format!("`{}` has no `spec.owner`", s.entity_ref));
        None
    }

    fn owner_by_codeowners(&self, path: Option<&str>, why: &mut Vec<String>) -> Option<Owner> {
        let path = path?;
        let Some(d) = self.codeowner_of(path) else {
            if let Some(file) = self.codeowners_file() {
                why.push(format!("no line of `{file}` gives `{path}` an owner"));
            }
            return None;
        };
        let file = self.codeowners_file().unwrap_or("CODEOWNERS");
        let sentence = format!(
            "`{file}` line {} (`{}`) gives the playbook `{path}` to `{}`",
            d.line, d.pattern, d.written
        );
        why.push(sentence.clone());
        Some(self.owner(d.owner, "codeowners", sentence))
    }

    fn owner(&self, r: EntityRef, rule: &str, why: String) -> Owner {
        let team = self.team(&r);
        let entity = self.get(&r);
        Owner {
            entity_ref: r,
            name: team.name,
            title: team.title,
            email: entity.and_then(|e| e.email.clone()),
            pagerduty_service: None,
            channels: Vec::new(),
            rule: rule.into(),
            why,
            in_catalog: entity.is_some(),
        }
    }

    fn team(&self, r: &EntityRef) -> Team {
        let entity = self.get(r);
        Team {
            entity_ref: r.clone(),
            name: entity.map_or_else(|| r.name.clone(), |e| e.name.clone()),
            title: entity.map_or_else(|| r.name.clone(), |e| e.title.clone()),
        }
    }

    /// Entity → the entities that depend on it (reverse `dependsOn`, and `dependencyOf`).
    pub fn dependents(&self) -> BTreeMap<&EntityRef, BTreeSet<&EntityRef>> {
        let mut out: BTreeMap<&EntityRef, BTreeSet<&EntityRef>> = BTreeMap::new();
        for e in self.entities.values() {
            for d in &e.depends_on {
                out.entry(&d.target).or_default().insert(&e.entity_ref);
            }
            for d in &e.dependency_of {
                out.entry(&e.entity_ref).or_default().insert(&d.target);
            }
        }
        out
    }

    /// The services downstream of `from`, nearest first, up to the depth limit.
    pub fn impacted(&self, from: &EntityRef) -> Vec<Impacted> {
        let dependents = self.dependents();
        let mut seen = BTreeSet::from([from]);
        let mut queue = VecDeque::from([(from, 0usize)]);
        let mut out = Vec::new();
        while let Some((at, depth)) = queue.pop_front() {
            if depth >= self.settings.impact_depth {
                continue;
            }
            for next in dependents.get(at).into_iter().flatten() {
                if !seen.insert(*next) {
                    continue;
                }
                queue.push_back((*next, depth + 1));
                let entity = self.get(next);
                out.push(Impacted {
                    entity_ref: (*next).clone(),
                    kind: next.kind.clone(),
                    name: entity.map_or_else(|| next.name.clone(), |e| e.name.clone()),
                    title: entity.map_or_else(|| next.name.clone(), |e| e.title.clone()),
                    depth: depth + 1,
                    via: at.clone(),
                    owner: entity
                        .and_then(|e| e.owner.as_ref())
                        .map(|o| self.team(&o.target)),
                });
            }
        }
        out
    }
}

/// Parses an alert selector: Alertmanager matchers separated by commas,
/// optionally in braces (`{service="orders", env=~"prod|staging"}`).
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(t);
    split_matchers(t)
        .into_iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            Matcher::parse(m).map_err(|e| match e {
                crate::playbook::matcher::MatcherError::Syntax(s)
                | crate::playbook::matcher::MatcherError::Regex(s) => s,
            })
        })
        .collect()
}

/// Splits on commas outside double quotes (a regex may hold a comma).
fn split_matchers(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EntityRef::parse(&text, None, DEFAULT_NAMESPACE).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_split_outside_quotes() {
        let m = parse_selector(r#"{service="orders", path=~"a,b|c", x!="\"q,\""}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].value, "a,b|c");
        assert!(parse_selector("service").is_err());
        assert!(parse_selector(r#"a=~"(""#).is_err());
    }
}
