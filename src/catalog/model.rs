//! The catalog's entities: the serde mirror of a Backstage catalog document
//! ([`RawEntity`], lenient: fields irctl does not use are ignored, as
//! Backstage's own kinds carry many), and the compiled [`Entity`] whose
//! references are parsed into canonical [`EntityRef`]s, each remembering
//! where it was written.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::refs::EntityRef;
use crate::yaml::{Pos, Spanned};

/// Annotation naming the alerts about an entity, in Alertmanager matcher
/// syntax (`service="orders", severity=~"critical|warning"`).
pub const ALERT_SELECTOR: &str = "irctl.dev/alert-selector";
/// Annotation marking a Component as platform or infrastructure (`"true"`).
pub const PLATFORM: &str = "irctl.dev/platform";
/// PagerDuty's service id annotation (Backstage's PagerDuty plugin).
pub const PAGERDUTY_SERVICE: &str = "pagerduty.com/service-id";
/// PagerDuty's integration key annotation: a credential, never shown.
pub const PAGERDUTY_KEY: &str = "pagerduty.com/integration-key";

/// One YAML document of a catalog file, as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawEntity {
    /// `backstage.io/v1alpha1` or `backstage.io/v1beta1`.
    pub api_version: Option<Spanned<String>>,
    /// `Component`, `Group`, `Location`, …
    pub kind: Option<Spanned<String>>,
    /// Name, namespace, annotations.
    pub metadata: Option<RawMetadata>,
    /// The kind's fields.
    #[serde(default)]
    pub spec: RawSpec,
}

/// `metadata`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMetadata {
    /// The entity's name.
    pub name: Option<Spanned<String>>,
    /// Its namespace (`default` when absent).
    pub namespace: Option<Spanned<String>>,
    /// A display title.
    pub title: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// Annotations (string values).
    #[serde(default)]
    pub annotations: BTreeMap<String, Spanned<String>>,
}

/// `spec`: the union of the fields irctl reads across kinds.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSpec {
    /// `service`, `database`, `team`, `infrastructure`, … (a Location's `file`/`url`).
    #[serde(rename = "type")]
    pub kind_type: Option<Spanned<String>>,
    /// Owner (default kind Group).
    pub owner: Option<Spanned<String>>,
    /// System (default kind System).
    pub system: Option<Spanned<String>>,
    /// Domain of a System (default kind Domain).
    pub domain: Option<Spanned<String>>,
    /// What this depends on (kind required).
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// What depends on this (kind required).
    #[serde(default)]
    pub dependency_of: Vec<Spanned<String>>,
    /// A Group's parent (default kind Group).
    pub parent: Option<Spanned<String>>,
    /// A Group's children (default kind Group).
    #[serde(default)]
    pub children: Vec<Spanned<String>>,
    /// A Group's members (default kind User).
    #[serde(default)]
    pub members: Vec<Spanned<String>>,
    /// A User's groups (default kind Group).
    #[serde(default)]
    pub member_of: Vec<Spanned<String>>,
    /// A Group's or User's profile.
    pub profile: Option<RawProfile>,
    /// A Location's single target.
    pub target: Option<Spanned<String>>,
    /// A Location's targets.
    #[serde(default)]
    pub targets: Vec<Spanned<String>>,
    /// A Location's `required` (default) or `optional`.
    pub presence: Option<String>,
}

/// `spec.profile` of a Group or User.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawProfile {
    /// The name people read.
    pub display_name: Option<String>,
    /// Contact address.
    pub email: Option<String>,
}

/// The kinds irctl knows; any other kind is kept (so references to it
/// resolve) but plays no part in ownership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A piece of software.
    Component,
    /// Infrastructure a component needs (database, bucket, cluster).
    Resource,
    /// A collection of components and resources.
    System,
    /// A team or other organisational unit.
    Group,
    /// A person.
    User,
    /// An API.
    Api,
    /// A business area.
    Domain,
    /// A pointer to more catalog files.
    Location,
    /// Anything else (`Template`, custom kinds).
    Other,
}

impl Kind {
    /// The kind of Backstage's `kind:` value (case-insensitive, as refs are).
    pub fn of(text: &str) -> Kind {
        match text.to_lowercase().as_str() {
            "component" => Kind::Component,
            "resource" => Kind::Resource,
            "system" => Kind::System,
            "group" => Kind::Group,
            "user" => Kind::User,
            "api" => Kind::Api,
            "domain" => Kind::Domain,
            "location" => Kind::Location,
            _ => Kind::Other,
        }
    }

    /// Whether alerts can be about an entity of this kind.
    pub fn is_service(self) -> bool {
        matches!(
            self,
            Kind::Component | Kind::Resource | Kind::System | Kind::Api
        )
    }
}

/// A reference written in a catalog file, parsed, with where it was written.
#[derive(Clone, Debug)]
pub struct Written {
    /// The canonical reference.
    pub target: EntityRef,
    /// As written.
    pub text: String,
    /// Where.
    pub pos: Pos,
}

/// One entity of the catalog, compiled.
#[derive(Clone, Debug)]
pub struct Entity {
    /// Its canonical reference.
    pub entity_ref: EntityRef,
    /// Its kind.
    pub kind: Kind,
    /// `metadata.name` as written.
    pub name: String,
    /// `metadata.title`, a Group's `spec.profile.displayName`, else the name.
    pub title: String,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `spec.type`, lowercase.
    pub spec_type: Option<String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Where each annotation's value is written.
    pub annotation_pos: BTreeMap<String, Pos>,
    /// `spec.owner`.
    pub owner: Option<Written>,
    /// `spec.system`.
    pub system: Option<Written>,
    /// `spec.domain` of a System.
    pub domain: Option<Written>,
    /// `spec.dependsOn`.
    pub depends_on: Vec<Written>,
    /// `spec.dependencyOf`.
    pub dependency_of: Vec<Written>,
    /// A Group's `spec.parent`.
    pub parent: Option<Written>,
    /// A Group's `spec.children`.
    pub children: Vec<Written>,
    /// A Group's `spec.members`.
    pub members: Vec<Written>,
    /// A User's `spec.memberOf`.
    pub member_of: Vec<Written>,
    /// A Group's or User's `spec.profile.email`.
    pub email: Option<String>,
    /// The file it was read from, as shown to users.
    pub file: String,
    /// Where its document starts.
    pub pos: Pos,
    /// Where its `metadata.name` is written.
    pub name_pos: Pos,
}

impl Entity {
    /// Every reference the entity writes, with the field it is in.
    pub fn references(&self) -> Vec<(&'static str, &Written)> {
        let singles = [
            ("spec.owner", &self.owner),
            ("spec.system", &self.system),
            ("spec.domain", &self.domain),
            ("spec.parent", &self.parent),
        ];
        let lists = [
            ("spec.dependsOn", &self.depends_on),
            ("spec.dependencyOf", &self.dependency_of),
            ("spec.children", &self.children),
            ("spec.members", &self.members),
            ("spec.memberOf", &self.member_of),
        ];
        let mut all: Vec<(&'static str, &Written)> = singles
            .into_iter()
            .filter_map(|(f, w)| w.as_ref().map(|w| (f, w)))
            .collect();
        for (f, ws) in lists {
            all.extend(ws.iter().map(|w| (f, w)));
        }
        all
    }
}
