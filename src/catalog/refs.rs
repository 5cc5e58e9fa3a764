//! Entity references in Backstage's syntax, `[kind:][namespace/]name`, with
//! Backstage's defaulting rules: a missing namespace is the referring
//! entity's own (`default` for most), a missing kind is the field's default
//! (`spec.owner` → Group, `spec.system` → System, `spec.members` → User, …),
//! and some fields (`spec.dependsOn`, `spec.dependencyOf`) have none, so a
//! kind is required there. Refs compare in Backstage's canonical form,
//! lowercased: `group:default/platform`, the form the rest of irctl
//! (`teams.yaml`, `incident.owner.ref`) keys on.

use std::fmt;

use serde::{Serialize, Serializer};

/// The namespace of an entity that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The kind a bare team reference has.
pub const TEAM_KIND: &str = "group";

/// Longest name or namespace Backstage accepts.
const MAX_PART: usize = 63;

/// A canonical entity reference: kind, namespace and name, all lowercase.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityRef {
    /// `component`, `group`, … (lowercase).
    pub kind: String,
    /// The namespace (lowercase).
    pub namespace: String,
    /// The name (lowercase).
    pub name: String,
}

/// Why a reference could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Empty, or an empty part (`:x`, `a:/x`).
    #[error("`{0}` is not an entity reference of the form `[kind:][namespace/]name`")]
    Malformed(String),
    /// No kind written where the field has no default.
    #[error("`{0}` needs a kind here (e.g. `component:{0}` or `resource:{0}`)")]
    NeedsKind(String),
}

impl EntityRef {
    /// A reference from its parts, canonicalised.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        EntityRef {
            kind: kind.to_lowercase(),
            namespace: namespace.to_lowercase(),
            name: name.to_lowercase(),
        }
    }

    /// Parses `text` as Backstage's `parseEntityRef` does: a `/` before the
    /// first `:` makes the whole rest the name; missing parts take
    /// `default_kind` (an error when `None`) and `default_namespace`.
    pub fn parse(
        text: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<EntityRef, RefError> {
        let t = text.trim();
        let malformed = || RefError::Malformed(text.to_string());
        if t.is_empty() {
            return Err(malformed());
        }
        let slash = t.find('/');
        let colon = t.find(':').filter(|c| slash.is_none_or(|s| s > *c));
        let kind = colon.map(|c| &t[..c]);
        let after_kind = colon.map_or(0, |c| c + 1);
        let namespace = slash.map(|s| &t[after_kind..s]);
        let name = &t[slash.map_or(after_kind, |s| s + 1)..];
        if kind == Some("") || namespace == Some("") || name.is_empty() {
            return Err(malformed());
        }
        let kind = match kind.or(default_kind) {
            Some(k) => k,
            None => return Err(RefError::NeedsKind(t.to_string())),
        };
        Ok(EntityRef::new(
            kind,
            namespace.unwrap_or(default_namespace),
            name,
        ))
    }

    /// Parses a team reference (`platform`, `group:default/platform`): a
    /// Backstage Group, whose namespace and name follow Backstage's naming
    /// rule, so a URL or a sentence written where a team belongs is refused.
    pub fn team(text: &str) -> Result<EntityRef, String> {
        let r = EntityRef::parse(text, Some(TEAM_KIND), DEFAULT_NAMESPACE)
            .map_err(|e| e.to_string())?;
        let t = text.trim();
        if !r.kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{t}` is not an entity reference: the kind `{}` must be letters and digits",
                r.kind
            ));
        }
        for (what, part) in [("namespace", &r.namespace), ("name", &r.name)] {
            check_part(t, what, part)?;
        }
        if r.kind != TEAM_KIND {
            return Err(format!(
                "`{t}` is a `{}`, not a team: a team is a Backstage Group (`group:NAMESPACE/NAME`)",
                r.kind
            ));
        }
        Ok(r)
    }

    /// The shortest form that reads back to the same reference when the
    /// field's default kind is `kind`: `platform` for `group:default/platform`.
    pub fn short(&self, default_kind: &str) -> String {
        match (
            self.kind == default_kind.to_lowercase(),
            self.namespace == DEFAULT_NAMESPACE,
        ) {
            (true, true) => self.name.clone(),
            (true, false) => format!("{}/{}", self.namespace, self.name),
            _ => self.to_string(),
        }
    }
}

/// Backstage's rule for names and namespaces: 1–63 characters of
/// `[A-Za-z0-9]` separated by single `-`, `_` or `.`.
fn check_part(whole: &str, what: &str, part: &str) -> Result<(), String> {
    let ok = !part.is_empty()
        && part.len() <= MAX_PART
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !part
            .as_bytes()
            .windows(2)
            .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{whole}` is not an entity reference: the {what} `{part}` must be 1-63 letters and digits separated by `-`, `_` or `.`"
        ))
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, kind: Option<&str>) -> Result<String, RefError> {
        EntityRef::parse(text, kind, DEFAULT_NAMESPACE).map(|r| r.to_string())
    }

    #[test]
    fn defaults_follow_backstage() {
        assert_eq!(
            parse("platform", Some("Group")).unwrap(),
            "group:default/platform"
        );
        assert_eq!(
            parse("ops/platform", Some("Group")).unwrap(),
            "group:ops/platform"
        );
        assert_eq!(
            parse("Component:Default/Orders", None).unwrap(),
            "component:default/orders"
        );
        assert_eq!(
            parse("user:jane", Some("Group")).unwrap(),
            "user:default/jane"
        );
        // A `/` before the `:` makes the rest the name.
        assert_eq!(parse("ns/a:b", Some("Group")).unwrap(), "group:ns/a:b");
        let other_ns = EntityRef::parse("platform", Some("Group"), "payments").unwrap();
        assert_eq!(other_ns.to_string(), "group:payments/platform");
    }

    #[test]
    fn depends_on_needs_a_kind() {
        assert_eq!(
            parse("orders", None),
            Err(RefError::NeedsKind("orders".into()))
        );
        assert!(parse("resource:orders-db", None).is_ok());
    }

    #[test]
    fn empty_parts_are_refused() {
        for bad in ["", " ", ":x", "a:/x", "a:b/", "/x", "group:"] {
            assert!(
                matches!(parse(bad, Some("Group")), Err(RefError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn team_short_forms_take_backstages_defaults() {
        for text in [
            "platform",
            "group:platform",
            "default/platform",
            "group:default/platform",
            "Group:Default/platform",
            " group:default/platform ",
        ] {
            assert_eq!(
                EntityRef::team(text).unwrap().to_string(),
                "group:default/platform",
                "{text}"
            );
        }
        // Compared as Backstage compares them: without case, so the
        // catalog's `DBA` and the teams file's `dba` are one team.
        assert_eq!(
            EntityRef::team("group:infra/DBA").unwrap().to_string(),
            "group:infra/dba"
        );
    }

    #[test]
    fn malformed_team_references_are_named() {
        for bad in [
            "",
            "group:",
            "group:default/",
            "a b",
            "group:default/x/y",
            "-x",
            "x--y",
            "https://hooks.slack.com/services/T/B/X",
            &"a".repeat(64),
        ] {
            assert!(EntityRef::team(bad).is_err(), "{bad}");
        }
        let e = EntityRef::team("component:default/orders").unwrap_err();
        assert!(e.contains("not a team"), "{e}");
    }

    #[test]
    fn short_form_reads_back() {
        let r = EntityRef::new("group", "default", "platform");
        assert_eq!(r.short("Group"), "platform");
        assert_eq!(r.short("Component"), "group:default/platform");
        assert_eq!(
            EntityRef::new("group", "ops", "sre").short("Group"),
            "ops/sre"
        );
    }
}
