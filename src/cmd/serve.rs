//! `irctl serve`: load the playbooks and credentials, describe how runs are
//! started and where a reload reads from, and hand over to [`irctl::serve`]
//! until SIGTERM.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::context::Context;
use crate::cli::ServeArgs;
use irctl::secret::Redactor;
use irctl::serve::auth::{self, Credentials};
use irctl::serve::worker::Launcher;
use irctl::serve::{refresh, reload, slack_update, tls};
use irctl::source::GitSpec;

/// Runs `serve`.
pub fn run(args: ServeArgs, ctx: &Context) -> anyhow::Result<u8> {
    let ui = ctx.ui;
    let (set, mappings) = ctx.load_playbooks_and_mappings(&args.source)?;
    let auto: Vec<&str> = set
        .playbooks
        .iter()
        .filter(|p| p.auto)
        .map(|p| p.name.as_str())
        .collect();
    if auto.is_empty() {
        ui.warn(
            "no playbook is `auto: true`: deliveries are stored and recorded, but no run starts by itself",
        );
    } else {
        ui.errln(&format!("playbooks run unattended: {}", auto.join(", ")));
    }
    let mut credentials = Credentials::load(ctx.secrets_file())?;
    credentials.grafana_signature_header = args.grafana_signature_header.clone();
    credentials.grafana_timestamp_header = args.grafana_timestamp_header.clone();
    credentials.hook_signature_header = args.hook_signature_header.clone();

    let exe = std::env::current_exe().context("cannot find the irctl binary to start runs")?;
    let state_dir = absolute(ctx.state_dir())?;
    let (run_args, mut env, mut env_remove) = run_source(&args, ctx)?;
    let refresh = refresh(&args)?;
    // Runs record who started them.
    env.push(("IRCTL_ACTOR".into(), "irctl-serve".into()));
    for name in auth::secret_names() {
        env_remove.push(format!("{}{name}", irctl::env::SECRET_PREFIX));
        env_remove.push(name);
    }
    let config = irctl::serve::Config {
        listen: args.listen,
        credentials,
        insecure_no_auth: args.insecure_no_auth,
        launcher: Launcher {
            exe,
            state_dir,
            args: run_args,
            env,
            env_remove,
            pin: refresh.as_ref().map(|r| r.pin.clone()),
        },
        max_runs: usize::from(args.max_runs),
        queue_max: args.queue_max,
        max_body: usize::try_from(args.max_body).unwrap_or(usize::MAX),
        grace: args.grace,
        dedup_window: args.dedup_window,
        served: reload::Served::of(
            &set,
            mappings,
            args.source.repo.is_some(),
            refresh.as_ref().map(|r| r.pin.get()),
        ),
        origin: origin(&args)?,
        secrets_file: ctx.secrets_file().map(absolute).transpose()?,
        tls: tls(&args)?,
        refresh,
        slack_approvers: args.slack_approvers.clone(),
        slack_update: slack_update::Settings {
            origins: args.slack_response_origins.clone(),
            redactor: redactor(ctx)?,
        },
        log: Arc::new(move |line: &str| ui.errln(line)),
    };
    irctl::serve::run(config)?;
    Ok(0)
}

/// Where a reload reads the playbooks and mappings again from.
fn origin(args: &ServeArgs) -> anyhow::Result<reload::Origin> {
    let s = &args.source;
    Ok(match &s.repo {
        Some(repo) => reload::Origin::Git(GitSpec {
            repo: repo.clone(),
            git_ref: s.git_ref.clone().filter(|r| !r.is_empty()),
            repo_path: s.repo_path.clone(),
            cache_dir: s.cache_dir.clone(),
            offline: true,
            fetch_timeout: s.fetch_timeout,
            pin_commit: None,
        }),
        None => reload::Origin::Dir(absolute(&s.playbooks)?),
    })
}

/// What Slack message updates must not show: the environment's secrets and
/// every value of the secrets file.
fn redactor(ctx: &Context) -> anyhow::Result<Redactor> {
    let Some(file) = ctx.secrets_file() else {
        return Ok(ctx.redactor());
    };
    let text = irctl::capped::read_to_string(file, irctl::secret::MAX_SECRETS_FILE_BYTES)
        .with_context(|| format!("cannot read secrets file `{}`", file.display()))?;
    let values = irctl::secret::parse_dotenv(&text, &file.display().to_string())?;
    Ok(ctx.redactor_with(&values))
}

/// HTTPS settings, when `--tls-cert` is given.
fn tls(args: &ServeArgs) -> anyhow::Result<Option<tls::Settings>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    if args.tls_handshake_timeout.is_zero() {
        anyhow::bail!("`--tls-handshake-timeout` must be longer than 0s");
    }
    Ok(Some(tls::Settings {
        cert: absolute(cert)?,
        key: absolute(key)?,
        client_ca: args.tls_client_ca.as_deref().map(absolute).transpose()?,
        handshake_timeout: args.tls_handshake_timeout,
    }))
}

/// Background refresh of a `--repo` source (not with `--offline`), and the
/// commit runs start pinned to.
fn refresh(args: &ServeArgs) -> anyhow::Result<Option<refresh::Settings>> {
    let s = &args.source;
    let Some(repo) = &s.repo else {
        return Ok(None);
    };
    if s.offline {
        return Ok(None);
    }
    if args.refresh < std::time::Duration::from_secs(1) {
        anyhow::bail!("`--refresh` must be at least 1s");
    }
    let spec = GitSpec {
        repo: repo.clone(),
        git_ref: s.git_ref.clone(),
        repo_path: s.repo_path.clone(),
        cache_dir: s.cache_dir.clone(),
        offline: false,
        fetch_timeout: s.fetch_timeout,
        pin_commit: None,
    };
    let pin = refresh::pin(&spec)?;
    Ok(Some(refresh::Settings {
        spec,
        every: args.refresh,
        pin,
    }))
}

type RunSource = (Vec<OsString>, Vec<(OsString, OsString)>, Vec<String>);

/// How each run finds the playbooks serve loaded: through the environment
/// (so a `--repo` URL never shows in a process listing) and flags that
/// carry no credentials.
fn run_source(args: &ServeArgs, ctx: &Context) -> anyhow::Result<RunSource> {
    let s = &args.source;
    let mut run_args: Vec<OsString> = Vec::new();
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut remove = Vec::new();
    if let Some(file) = ctx.secrets_file() {
        run_args.push("--secrets-file".into());
        run_args.push(absolute(file)?.into());
    }
    match &s.repo {
        Some(repo) => {
            env.push(("IRCTL_REPO".into(), repo.into()));
            match &s.git_ref {
                Some(r) => env.push(("IRCTL_REF".into(), r.into())),
                None => remove.push("IRCTL_REF".to_string()),
            }
            run_args.push("--repo-path".into());
            run_args.push(s.repo_path.clone().into());
            if s.offline {
                run_args.push("--offline".into());
            }
            run_args.push("--fetch-timeout".into());
            // In milliseconds: `duration::format` writes `10.0s`, which
            // the flag's parser refuses.
            run_args.push(format!("{}ms", s.fetch_timeout.as_millis()).into());
        }
        None => {
            env.push(("IRCTL_PLAYBOOKS".into(), absolute(&s.playbooks)?.into()));
            remove.push("IRCTL_REPO".to_string());
            remove.push("IRCTL_REF".to_string());
        }
    }
    if let Some(cache) = &s.cache_dir {
        env.push(("IRCTL_CACHE_DIR".into(), absolute(cache)?.into()));
    }
    Ok((run_args, env, remove))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve `{}`", path.display()))
}
