//! Where secret values come from: the `--secrets-file` (dotenv), then
//! `IRCTL_SECRET_<NAME>`, then `<NAME>` in the environment, all resolved
//! before anything runs so a missing one stops the run at the start.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;

use super::Secret;
use super::strength::weakness;

/// Parses a dotenv file: `NAME=value`, `export NAME=value`, quotes, `#` comments.
pub fn parse_dotenv(text: &str, origin: &str) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            anyhow::bail!("`{origin}` line {}: expected `NAME=value`", i + 1);
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            anyhow::bail!("`{origin}` line {}: invalid name `{k}`", i + 1);
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.insert(k.to_string(), Secret::new(v));
    }
    Ok(out)
}

/// Resolves each declared name from the secrets file, then `IRCTL_SECRET_NAME`, then `NAME`.
/// Returns the missing names as an error before anything runs; a secret
/// set to the empty string anywhere is missing there, and the error says where.
pub fn resolve(names: &[String], file: Option<&Path>) -> anyhow::Result<BTreeMap<String, Secret>> {
    let from_file = match file {
        Some(path) => {
            let text = crate::capped::read_to_string(path, MAX_SECRETS_FILE_BYTES)
                .with_context(|| format!("cannot read secrets file `{}`", path.display()))?;
            parse_dotenv(&text, &path.display().to_string())?
        }
        None => BTreeMap::new(),
    };
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for name in names {
        let mut empty = Vec::new();
        let value = match from_file.get(name) {
            Some(v) if v.expose().is_empty() => {
                if let Some(path) = file {
                    empty.push(format!("`{}`", path.display()));
                }
                None
            }
            other => other.cloned(),
        }
        .or_else(|| crate::env::secret(name, &mut empty).map(Secret::new));
        match value {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None if empty.is_empty() => missing.push(format!("`{name}`")),
            None => missing.push(format!("`{name}` (empty in {})", empty.join(", "))),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "missing secret{} {}: set them in `--secrets-file`, or as `IRCTL_SECRET_<NAME>` or `<NAME>` in the environment",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
    }
    for (name, value) in &out {
        if let Some(why) = weakness(value.expose()) {
            anyhow::bail!(
                "secret `{name}` is {why}: irctl masks a secret wherever its value appears in output, and this value would either show through or mask ordinary words; use the real credential"
            );
        }
    }
    Ok(out)
}

/// Resolves `name` like [`resolve`] when it is set anywhere (the secrets
/// file, `IRCTL_SECRET_<NAME>`, `<NAME>`, even to the empty string, which is
/// refused); `None` when it is set nowhere: for optional secrets.
pub fn resolve_optional(name: &str, file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    let in_file = match file {
        Some(path) => {
            let text = crate::capped::read_to_string(path, MAX_SECRETS_FILE_BYTES)
                .with_context(|| format!("cannot read secrets file `{}`", path.display()))?;
            parse_dotenv(&text, &path.display().to_string())?.contains_key(name)
        }
        None => false,
    };
    let mut empty = Vec::new();
    let in_env = crate::env::secret(name, &mut empty).is_some() || !empty.is_empty();
    if !in_file && !in_env {
        return Ok(None);
    }
    Ok(resolve(&[name.to_string()], file)?.remove(name))
}

/// Largest secrets file read: a dotenv file of a few secrets is far smaller.
pub const MAX_SECRETS_FILE_BYTES: u64 = 1024 * 1024;
