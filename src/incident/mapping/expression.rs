//! The environment mapping expressions run in: no loader, no globals but
//! `payload`, a fuel budget so a loop cannot spin, undefined fields
//! chainable since senders leave fields out, and the `tags` filter.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value as JValue};

/// Fuel for one expression: far above what reading a payload takes.
const FUEL: u64 = 200_000;

/// The environment mapping expressions run in: the built-in filters and
/// tests, `tags`, nothing that reaches outside the payload.
pub(super) fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        env.add_filter("tags", tags);
        env
    })
}

/// `"env:prod,team:db"` or `["env:prod", "team:db"]` as a label map: names
/// made label-safe (other characters become `_`), a tag without `:` maps to
/// `"true"`.
fn tags(value: JValue) -> Result<JValue, minijinja::Error> {
    let items: Vec<String> = if let Some(s) = value.as_str() {
        s.split(',').map(str::to_string).collect()
    } else if value.is_undefined() || value.is_none() {
        Vec::new()
    } else {
        value
            .try_iter()?
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    };
    let mut out = BTreeMap::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = item.split_once(':').unwrap_or((item, "true"));
        let mut name: String = key
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
            name.insert(0, '_');
        }
        out.insert(name, value.trim().to_string());
    }
    Ok(crate::template::value(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::mapping::check;

    #[test]
    fn tags_become_label_safe_names() {
        let v = tags(JValue::from("env:prod, kube-namespace:shop,canary,9x:y")).unwrap();
        let m: BTreeMap<String, String> =
            serde_json::from_value(serde_json::to_value(&v).unwrap()).unwrap();
        assert_eq!(m["env"], "prod");
        assert_eq!(m["kube_namespace"], "shop");
        assert_eq!(m["canary"], "true");
        assert_eq!(m["_9x"], "y");
    }

    #[test]
    fn an_expression_cannot_spin_forever() {
        let text = "version: 1\nname: x\ndetect: [{pointer: /a}]\ntitle: \"range(100000) | map('string') | join | length\"\n";
        let (m, _) = check("sources/x.yaml", text);
        let err = m
            .unwrap()
            .apply(&serde_json::json!({"a": 1}), "p.json")
            .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }
}
