//! `irctl serve`: alerts start their playbooks by themselves.
//!
//! A long-running receiver that Alertmanager, Grafana, PagerDuty and
//! CloudEvents routers post to. The path of a delivery:
//!
//! 1. [`http`] checks the credentials on the raw bytes ([`auth`]), parses
//!    the payload ([`source`]), and stores it durably with its
//!    deduplication key ([`store`], [`sqlite`]) before answering 202;
//! 2. [`worker`]s take queued deliveries and start `irctl run --auto-only`
//!    for each, as a child process — never inside the request — and read
//!    back what it decided and how its steps went ([`outcome`]);
//! 3. SIGTERM (or SIGINT) drains: hooks answer 503 + `Retry-After`,
//!    `/readyz` fails, runs in flight get `grace` to finish before their
//!    process groups are stopped, and the queue resumes on the next start.
//!
//! [`metrics`] counts what happened, for `/metrics`. [`tls`] serves HTTPS
//! (optionally mutual) with certificates reloaded in place,
//! [`refresh`] keeps a Git source fresh in the background and pins each run
//! to a commit, [`reload`] swaps in the playbooks and mappings a refresh or
//! SIGHUP brings (SIGHUP also reads the secrets file and TLS files again),
//! and [`slack`] takes the clicks on the Approve, Deny and Accept buttons of
//! irctl's Slack messages, whose text [`slack_update`] then replaces with
//! the outcome.

pub mod auth;
pub mod http;
pub mod metrics;
pub mod outcome;
pub mod refresh;
pub mod reload;
pub mod slack;
pub mod slack_update;
pub mod source;
pub mod sqlite;
pub mod store;
pub mod tls;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use auth::Credentials;
use metrics::Metrics;
use store::Store;
use worker::{Launcher, Phase};

/// Where serve reports what it does (the CLI prints it).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// How to serve.
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Who may post.
    pub credentials: Credentials,
    /// Accept posts without credentials (only on a loopback address).
    pub insecure_no_auth: bool,
    /// How runs are started (and where the state directory is).
    pub launcher: Launcher,
    /// Runs at once.
    pub max_runs: usize,
    /// Deliveries stored and not yet done before hooks answer 503.
    pub queue_max: u64,
    /// Largest body accepted.
    pub max_body: usize,
    /// How long runs in flight may finish after SIGTERM.
    pub grace: Duration,
    /// How long a done delivery's key is kept to recognise its copies.
    pub dedup_window: Duration,
    /// The playbooks and payload mappings loaded at start.
    pub served: reload::Served,
    /// Where SIGHUP reads the playbooks and mappings again from (a `--repo`
    /// with `refresh` is fetched instead).
    pub origin: reload::Origin,
    /// The secrets file credentials were read from, read again on SIGHUP.
    pub secrets_file: Option<PathBuf>,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<tls::Settings>,
    /// Fetch the Git source in the background (the launcher pins runs to it).
    pub refresh: Option<refresh::Settings>,
    /// Slack user ids whose approval clicks count; empty: anyone's.
    pub slack_approvers: Vec<String>,
    /// Where the original Slack message of a click may be updated.
    pub slack_update: slack_update::Settings,
    /// Where to report.
    pub log: Log,
}

/// What handlers and workers share.
pub struct Shared<S> {
    store: Arc<S>,
    credentials: RwLock<Arc<Credentials>>,
    insecure_no_auth: bool,
    metrics: Metrics,
    draining: AtomicBool,
    wake: Notify,
    max_body: usize,
    served: reload::View,
    slack_approvers: Vec<String>,
    slack_update: slack_update::Updater,
    launcher: Launcher,
    log: Log,
    runs_cache: Mutex<Option<(Instant, metrics::RunCounts)>>,
}

impl<S> Shared<S> {
    /// The credentials in force now (SIGHUP may replace them).
    fn credentials(&self) -> Arc<Credentials> {
        match self.credentials.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_credentials(&self, next: Credentials) {
        match self.credentials.write() {
            Ok(mut c) => *c = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
    }
}

/// Serves until SIGTERM or SIGINT, then drains and returns.
pub fn run(config: Config) -> anyhow::Result<()> {
    if config.insecure_no_auth && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "`--insecure-no-auth` is refused on `{}`: without credentials, listen on a loopback address only",
            config.listen
        );
    }
    if !config.insecure_no_auth && no_credential(&config.credentials) {
        anyhow::bail!(
            "no credentials configured: set `{}` (and `{}` / `{}` for their hooks, or `{}` for Slack buttons) in `--secrets-file` or as `IRCTL_SECRET_<NAME>`, or pass `--insecure-no-auth` on a loopback address",
            auth::BEARER,
            auth::PAGERDUTY,
            auth::GRAFANA_HMAC,
            auth::SLACK_SIGNING
        );
    }
    let slack_update = slack_update::Updater::new(&config.slack_update)?;
    // Before anything listens: a bad certificate is a startup error.
    let certs = config
        .tls
        .clone()
        .map(tls::Certs::load)
        .transpose()?
        .map(Arc::new);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, certs, slack_update))
}

/// Whether `credentials` authenticate no endpoint at all, Slack's included.
fn no_credential(credentials: &Credentials) -> bool {
    credentials.is_empty() && credentials.slack_signing().is_empty()
}

async fn serve(
    config: Config,
    certs: Option<Arc<tls::Certs>>,
    slack_update: slack_update::Updater,
) -> anyhow::Result<()> {
    let log = config.log.clone();
    let db = config.launcher.state_dir.join("serve").join("queue.db");
    let opened = sqlite::Sqlite::open(&db, config.queue_max)?;
    if opened.requeued > 0 {
        log(&format!(
            "{} deliveries taken before a restart are queued again",
            opened.requeued
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address of `{}`", config.listen))?;
    // SIGHUP is taken from now on, with or without TLS: its default would
    // end serve.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch for SIGHUP")?;
    if !config.insecure_no_auth {
        for (source, secret) in config.credentials.unconfigured() {
            log(&format!(
                "warning: /hooks/{} refuses every delivery: set `{secret}` to enable it",
                source.as_str()
            ));
        }
        log(&endpoints(&config.credentials, &config.served.mappings));
    } else {
        log("warning: --insecure-no-auth: hooks accept deliveries without credentials");
    }
    for m in &config.served.mappings {
        if source::reachable(&m.name) {
            log(&format!(
                "/hooks/{} reads payloads with mapping `{}` ({})",
                m.name, m.name, m.file
            ));
        } else {
            log(&format!(
                "warning: mapping `{}` ({}) is named like a built-in payload format, so it has no endpoint of its own",
                m.name, m.file
            ));
        }
    }
    let shared = Arc::new(Shared {
        store: Arc::new(opened.store),
        credentials: RwLock::new(Arc::new(config.credentials)),
        insecure_no_auth: config.insecure_no_auth,
        metrics: Metrics::default(),
        draining: AtomicBool::new(false),
        wake: Notify::new(),
        max_body: config.max_body,
        served: reload::View::new(config.served),
        slack_approvers: config.slack_approvers,
        slack_update,
        launcher: config.launcher,
        log: log.clone(),
        runs_cache: Mutex::new(None),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.max_runs.max(1) {
        workers.spawn(worker::work(shared.clone(), phase_rx.clone()));
    }
    let pruner = tokio::spawn(prune(shared.clone(), config.dedup_window));
    let refresh_now = Arc::new(Notify::new());
    let fetching = config.refresh.is_some();
    let refresher = config.refresh.map(|settings| {
        let shared = shared.clone();
        let now = refresh_now.clone();
        tokio::spawn(async move {
            refresh::keep_fresh(
                settings,
                &shared.served,
                &shared.metrics.git,
                &now,
                shared.log.clone(),
            )
            .await;
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(shared.clone());
    let stopped = async {
        let _ = stop_rx.await;
    };
    let hangup = tokio::spawn(on_hangup(
        shared.clone(),
        hangups,
        Reload {
            playbooks: if fetching {
                Playbooks::Fetch(refresh_now.clone())
            } else {
                Playbooks::Load(config.origin)
            },
            secrets_file: config.secrets_file,
            certs: certs.clone(),
        },
    ));
    let (server, scheme, watcher) = match certs {
        Some(certs) => {
            let watcher = tokio::spawn(tls::watch(certs.clone(), log.clone()));
            let listener = tls::listen(listener, certs, log.clone())?;
            let server = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            });
            (server, "https", Some(watcher))
        }
        None => {
            let server = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            });
            (server, "http", None)
        }
    };
    log(&format!(
        "listening on {scheme}://{local} ({} runs at once, queue up to {})",
        config.max_runs.max(1),
        config.queue_max
    ));

    wait_for_signal().await?;
    log(&format!(
        "stopping: no new deliveries; runs in flight have {} to finish",
        crate::duration::format(config.grace)
    ));
    shared.draining.store(true, Ordering::Relaxed);
    let _ = phase_tx.send(Phase::Draining);
    let drained = tokio::time::timeout(config.grace, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        log("grace period over: stopping the runs still in flight");
        let _ = phase_tx.send(Phase::Stopping);
        while workers.join_next().await.is_some() {}
    }
    pruner.abort();
    if let Some(r) = refresher {
        r.abort();
    }
    if let Some(w) = watcher {
        w.abort();
    }
    // The SIGHUP handler stays installed (a late SIGHUP is ignored, never fatal).
    hangup.abort();
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => return Err(e).context("the HTTP server failed"),
        Ok(Err(e)) => return Err(e).context("the HTTP server task failed"),
    }
    log(&format!(
        "stopped; {} deliveries stay queued for the next start",
        shared.store.depth()
    ));
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Forgets done deliveries older than `window`, every few minutes.
async fn prune<S: Store>(shared: Arc<Shared<S>>, window: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        let before = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = shared.store.prune(before).await {
            (shared.log)(&format!("error: cannot prune old deliveries: {e:#}"));
        }
    }
}

/// What SIGHUP reads again.
struct Reload {
    playbooks: Playbooks,
    secrets_file: Option<PathBuf>,
    certs: Option<Arc<tls::Certs>>,
}

/// How SIGHUP reloads the playbooks and mappings.
enum Playbooks {
    /// Ask the Git refresher to fetch now (it loads and logs the outcome).
    Fetch(Arc<Notify>),
    /// Read them again from the directory, or the cached `--ref`.
    Load(reload::Origin),
}

/// Reloads on each SIGHUP — playbooks and mappings, the secrets file's
/// credentials, the TLS files — each part on its own: one that fails keeps
/// what it had and does not hold back the others. Ignored while draining.
async fn on_hangup<S: Store>(
    shared: Arc<Shared<S>>,
    mut hangups: tokio::signal::unix::Signal,
    reload: Reload,
) {
    let log = shared.log.clone();
    while hangups.recv().await.is_some() {
        if shared.draining.load(Ordering::Relaxed) {
            log("SIGHUP ignored: serve is stopping");
            continue;
        }
        match &reload.playbooks {
            Playbooks::Fetch(now) => {
                now.notify_one();
                log("SIGHUP: playbooks: fetching the repository now");
            }
            Playbooks::Load(origin) => {
                let origin = origin.clone();
                let loaded = tokio::task::spawn_blocking(move || reload::load(&origin, None))
                    .await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("the loading thread failed: {e}")));
                match shared.served.offer(loaded) {
                    Ok(change) => log(&format!("SIGHUP: playbooks: serving {change}")),
                    Err(why) => log(&format!("warning: SIGHUP: playbooks not reloaded: {why}")),
                }
            }
        }
        if let Some(file) = &reload.secrets_file {
            let current = shared.credentials();
            match reread_credentials(&current, file, shared.insecure_no_auth) {
                Ok(next) => {
                    let shown = endpoints(&next, &shared.served.get().mappings);
                    shared.set_credentials(next);
                    log(&format!(
                        "SIGHUP: credentials reloaded from `{}`; {shown}",
                        file.display()
                    ));
                }
                Err(e) => log(&format!(
                    "error: SIGHUP: credentials not reloaded, the current ones stay: {e:#}"
                )),
            }
        }
        if let Some(certs) = &reload.certs {
            log(&format!("SIGHUP: {}", certs.reload_for("SIGHUP")));
        }
    }
}

/// The credentials `file` (and the environment) hold now, with the header
/// names the flags chose; refused when they would authenticate nothing.
fn reread_credentials(
    current: &Credentials,
    file: &std::path::Path,
    insecure_no_auth: bool,
) -> anyhow::Result<Credentials> {
    let mut next = Credentials::load(Some(file))?;
    next.hook_signature_header = current.hook_signature_header.clone();
    next.grafana_signature_header = current.grafana_signature_header.clone();
    next.grafana_timestamp_header = current.grafana_timestamp_header.clone();
    if !insecure_no_auth && no_credential(&next) {
        anyhow::bail!(
            "`{}` now holds no credential, which would refuse every delivery",
            file.display()
        );
    }
    Ok(next)
}

/// Which endpoints authenticate their callers and which refuse everyone
/// (403) for want of a credential, in one line for the log.
fn endpoints(credentials: &Credentials, mappings: &[crate::incident::Mapping]) -> String {
    let none = axum::http::HeaderMap::new();
    let open = |r: Result<(), auth::Denied>| !matches!(r, Err(auth::Denied::NotConfigured));
    let mut on = Vec::new();
    let mut off = Vec::new();
    let mut sources: Vec<source::Source> = source::Source::ALL.to_vec();
    if let Some(m) = mappings.iter().find(|m| source::reachable(&m.name)) {
        sources.push(source::Source::Mapping(Arc::from(m.name.as_str())));
    }
    for s in sources {
        let path = match &s {
            source::Source::Mapping(_) => "/hooks/MAPPING".to_string(),
            other => format!("/hooks/{}", other.as_str()),
        };
        if open(credentials.check(&s, &none, b"", 0)) {
            on.push(path);
        } else {
            off.push(path);
        }
    }
    let slack = "/hooks/slack/interactivity".to_string();
    if credentials.slack_signing().is_empty() {
        off.push(slack);
    } else {
        on.push(slack);
    }
    if open(credentials.check_reader(&none)) {
        on.push("/api".into());
    } else {
        off.push("/api".into());
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "endpoints authenticated: {}; disabled (answer 403): {}",
        list(&on),
        list(&off)
    )
}
