//! The process environment, read in one place.
//!
//! What the environment can change about irctl is short and should stay easy
//! to audit: each variable irctl reads has one function here, and clippy's
//! `disallowed-methods` (see `clippy.toml`) keeps `std::env::var` and friends
//! out of every other module. Flags with an environment fallback
//! (`IRCTL_PLAYBOOKS`, `IRCTL_REPO`, `IRCTL_STATE_DIR`, ...) are declared on
//! the flag in `src/cli/`, where `--help` shows them.

// This module is the one place allowed to read the environment.
#![allow(clippy::disallowed_methods)]

/// Prefix of the variables that hold secrets (`IRCTL_SECRET_SLACK_WEBHOOK`).
pub const SECRET_PREFIX: &str = "IRCTL_SECRET_";

/// Fixes the clock of the commands that read it; for tests and reproducible reports.
pub const NOW: &str = "IRCTL_NOW";

/// `IRCTL_NOW` as set (an empty value counts as unset), for [`crate::clock`] to parse.
pub fn now() -> Option<String> {
    std::env::var(NOW).ok().filter(|v| !v.is_empty())
}

/// Who runs irctl, for the record: `IRCTL_ACTOR`, else the login (`USER`,
/// `LOGNAME`), else `unknown`.
pub fn actor() -> String {
    ["IRCTL_ACTOR", "USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether `NO_COLOR` asks for no color (set and not empty, per no-color.org).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The variable holding an https token for Git remotes.
pub const GIT_TOKEN: &str = "IRCTL_GIT_TOKEN";

/// `IRCTL_GIT_TOKEN`, when set and not empty.
pub fn git_token() -> Option<String> {
    std::env::var(GIT_TOKEN).ok().filter(|t| !t.is_empty())
}

/// A declared secret's value: `IRCTL_SECRET_<NAME>`, else `<NAME>`. A
/// variable set to the empty string counts as unset (GitHub Actions hands
/// an undefined secret to a job as `""`); its name is pushed to `empty`.
pub fn secret(name: &str, empty: &mut Vec<String>) -> Option<String> {
    [format!("{SECRET_PREFIX}{name}"), name.to_string()]
        .into_iter()
        .find_map(|var| match std::env::var(&var) {
            Ok(v) if v.is_empty() => {
                empty.push(format!("`{var}`"));
                None
            }
            other => other.ok(),
        })
}

/// The values of every `IRCTL_SECRET_*` variable, whether or not a playbook
/// declares it, so records can redact them too; a value that is not valid
/// Unicode is decoded lossily rather than skipped, so it is still redacted.
pub fn secret_values() -> Vec<String> {
    std::env::vars_os()
        .filter(|(k, _)| k.to_string_lossy().starts_with(SECRET_PREFIX))
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .collect()
}

/// Turns off the cgroup v2 per step (`IRCTL_NO_CGROUP`, set and not empty),
/// for hosts where another tool owns the cgroup tree; steps are then
/// contained by marker and subreaper alone.
pub fn no_cgroup() -> bool {
    std::env::var_os("IRCTL_NO_CGROUP").is_some_and(|v| !v.is_empty())
}

/// The whole environment, which a step's processes inherit before their own
/// settings change it.
pub fn inherited() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().collect()
}
