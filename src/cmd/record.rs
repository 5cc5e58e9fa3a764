//! What the record commands (`runs`, `timeline`, `note`, `resolve`,
//! `ingest`, `postmortem`, `stats`) share: the state directory, the warnings
//! readers collect, and redaction of everything they print.

use std::path::PathBuf;

use crate::cli::StateArgs;
use crate::ui::Ui;
use irctl::engine;
use irctl::record::{self, Scope, Store};
use irctl::secret::Redactor;

/// The state directory: `--state-dir`, `IRCTL_STATE_DIR`, or the default.
pub fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(engine::default_state_dir)
}

/// Reads the runs in `scope` and prints the readers' warnings (torn or unreadable lines).
pub fn open(args: &StateArgs, scope: Scope<'_>, ui: &Ui) -> anyhow::Result<Store> {
    let store = Store::open_scoped(&state_dir(args), scope)?;
    warn_all(ui, &store.warnings);
    Ok(store)
}

/// Prints each warning once.
pub fn warn_all(ui: &Ui, warnings: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for w in warnings {
        if seen.insert(w) {
            ui.warn(w);
        }
    }
}

/// Prints `text` to stdout after redacting every secret irctl can see.
pub struct Out<'a> {
    ui: &'a Ui,
    redactor: Redactor,
}

impl<'a> Out<'a> {
    /// An output channel for `ui`.
    pub fn new(ui: &'a Ui) -> Self {
        Out {
            ui,
            redactor: record::env_redactor(),
        }
    }

    /// `text`, redacted, with control characters other than line breaks and
    /// tabs escaped: titles and notes come from alert payloads and people,
    /// and must not drive the terminal (colours, cursor moves, OSC links).
    pub fn redact(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in self.redactor.redact(text).chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                out.extend(c.escape_unicode());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Prints one redacted line.
    pub fn line(&self, text: &str) -> anyhow::Result<()> {
        self.ui.outln(&self.redact(text))?;
        Ok(())
    }
}

/// Who is acting: `--author`, else `IRCTL_ACTOR`, else the login.
pub fn author(flag: &Option<String>) -> String {
    flag.clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(irctl::env::actor)
}

/// Parses an optional `--since` (see [`record::parse_since`]), as a usage
/// error naming the flag.
pub fn since(flag: &Option<String>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    flag.as_deref()
        .map(|s| record::parse_since(s).map_err(|e| anyhow::anyhow!("`--since`: {e}")))
        .transpose()
}

/// Parses an optional `--at`, as a usage error naming the flag. A time in
/// the future (beyond a few minutes of clock skew) is refused: the log is
/// append-only, so a mistyped year would skew the postmortem and `stats` for good.
pub fn at(flag: &Option<String>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(text) = flag.as_deref() else {
        return Ok(None);
    };
    let t = record::parse_at(text).map_err(|e| anyhow::anyhow!("`--at`: {e}"))?;
    let now = record::now();
    if t > now + chrono::Duration::minutes(5) {
        anyhow::bail!(
            "`--at {text}` is in the future (now is {}); record what already happened",
            record::show_time(now)
        );
    }
    Ok(Some(t))
}
