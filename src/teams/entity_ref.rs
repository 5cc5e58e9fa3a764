//! Backstage entity references (`group:default/platform`), read the way
//! Backstage reads them: `[kind:][namespace/]name`, the kind defaulting to
//! `group` for a team and the namespace to `default`, kind and namespace
//! compared without case. The canonical form is what irctl keys teams by
//! and writes in events, so `platform`, `group:platform` and
//! `Group:Default/platform` all name one team.

use std::fmt;

/// The kind a bare team reference has.
pub const DEFAULT_KIND: &str = "group";

/// The namespace a reference without one has.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Longest name or namespace Backstage accepts.
const MAX_PART: usize = 63;

/// A parsed entity reference, kind and namespace lowercased.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityRef {
    /// `group`, `user`, `component`, …
    pub kind: String,
    /// `default` unless written.
    pub namespace: String,
    /// The entity's name, as written.
    pub name: String,
}

impl EntityRef {
    /// Parses `text` with `default_kind` for a reference that has no kind.
    pub fn parse(text: &str, default_kind: &str) -> Result<EntityRef, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty entity reference".into());
        }
        let (kind, rest) = match t.split_once(':') {
            Some((k, r)) => (k, r),
            None => (default_kind, t),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, n)) => (ns, n),
            None => (DEFAULT_NAMESPACE, rest),
        };
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{t}` is not an entity reference: the kind `{kind}` must be letters and digits"
            ));
        }
        for (what, part) in [("namespace", namespace), ("name", name)] {
            check_part(t, what, part)?;
        }
        Ok(EntityRef {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_string(),
        })
    }

    /// Parses a team reference: a Backstage Group.
    pub fn team(text: &str) -> Result<EntityRef, String> {
        let r = EntityRef::parse(text, DEFAULT_KIND)?;
        if r.kind != DEFAULT_KIND {
            return Err(format!(
                "`{}` is a `{}`, not a team: a team is a Backstage Group (`group:NAMESPACE/NAME`)",
                text.trim(),
                r.kind
            ));
        }
        Ok(r)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_take_backstages_defaults() {
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
        assert_eq!(
            EntityRef::team("group:infra/DBA").unwrap().to_string(),
            "group:infra/DBA"
        );
        assert_eq!(
            EntityRef::parse("orders", "component").unwrap().to_string(),
            "component:default/orders"
        );
    }

    #[test]
    fn malformed_references_are_named() {
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
}
