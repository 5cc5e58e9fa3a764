//! What `run`, `drill` and `resume` share before and around the engine: the
//! state dir, a playbook's secrets, Ctrl-C/SIGTERM as a cancel signal. One
//! copy, so the three cannot drift.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::cli::ExecArgs;
use irctl::diagnostic;
use irctl::playbook::Playbook;
use irctl::secret::{self, Secret};

/// `--state-dir` (or `IRCTL_STATE_DIR`), else the default state dir.
pub fn state_dir(exec: &ExecArgs) -> PathBuf {
    super::record::state_dir(&exec.state)
}

/// The values of the secrets `playbook` declares, from the environment or `--secrets-file`.
pub fn secrets(playbook: &Playbook, exec: &ExecArgs) -> anyhow::Result<BTreeMap<String, Secret>> {
    secret::resolve(&playbook.secrets, exec.secrets_file.as_deref())
}

/// The error for a playbook name that is not in `known`, with a suggestion.
pub fn unknown_playbook<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> anyhow::Error {
    let help = diagnostic::did_you_mean(name, known)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    anyhow::anyhow!("no playbook named `{name}`{help}")
}

/// The runtime the engine runs on: two workers are plenty for steps that
/// mostly wait on processes and sockets.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A receiver that gets `SIGINT` or `SIGTERM` (the signal's name) once
/// either arrives; call inside the runtime that runs the engine.
pub fn cancel_on_signal() -> watch::Receiver<Option<String>> {
    let (cancel_tx, cancel_rx) = watch::channel(None);
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let reason = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = cancel_tx.send(Some(reason.to_string()));
    });
    cancel_rx
}
