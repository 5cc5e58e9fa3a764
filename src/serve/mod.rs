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
//! to a commit, and [`slack`] takes the clicks on the Approve, Deny and
//! Accept buttons of irctl's Slack messages.

pub mod auth;
pub mod http;
pub mod metrics;
pub mod outcome;
pub mod refresh;
pub mod slack;
pub mod source;
pub mod sqlite;
pub mod store;
pub mod tls;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// How many valid playbooks were loaded (0: not ready).
    pub playbooks: usize,
    /// The playbook source's payload mappings, each served at `/hooks/NAME`.
    pub mappings: Vec<crate::incident::Mapping>,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<tls::Settings>,
    /// Fetch the Git source in the background (the launcher pins runs to it).
    pub refresh: Option<refresh::Settings>,
    /// Slack user ids whose approval clicks count; empty: anyone's.
    pub slack_approvers: Vec<String>,
    /// Where to report.
    pub log: Log,
}

/// What handlers and workers share.
pub struct Shared<S> {
    store: Arc<S>,
    credentials: Credentials,
    insecure_no_auth: bool,
    metrics: Metrics,
    draining: AtomicBool,
    wake: Notify,
    max_body: usize,
    playbooks: usize,
    mappings: Vec<crate::incident::Mapping>,
    slack_approvers: Vec<String>,
    launcher: Launcher,
    log: Log,
    runs_cache: Mutex<Option<(Instant, metrics::RunCounts)>>,
}

/// Serves until SIGTERM or SIGINT, then drains and returns.
pub fn run(config: Config) -> anyhow::Result<()> {
    if config.insecure_no_auth && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "`--insecure-no-auth` is refused on `{}`: without credentials, listen on a loopback address only",
            config.listen
        );
    }
    if !config.insecure_no_auth && config.credentials.is_empty() {
        anyhow::bail!(
            "no credentials configured: set `{}` (and `{}` / `{}` for their hooks) in `--secrets-file` or as `IRCTL_SECRET_<NAME>`, or pass `--insecure-no-auth` on a loopback address",
            auth::BEARER,
            auth::PAGERDUTY,
            auth::GRAFANA_HMAC
        );
    }
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
    runtime.block_on(serve(config, certs))
}

async fn serve(config: Config, certs: Option<Arc<tls::Certs>>) -> anyhow::Result<()> {
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
    if !config.insecure_no_auth {
        for (source, secret) in config.credentials.unconfigured() {
            log(&format!(
                "warning: /hooks/{} refuses every delivery: set `{secret}` to enable it",
                source.as_str()
            ));
        }
    } else {
        log("warning: --insecure-no-auth: hooks accept deliveries without credentials");
    }
    for m in &config.mappings {
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
        credentials: config.credentials,
        insecure_no_auth: config.insecure_no_auth,
        metrics: Metrics::default(),
        draining: AtomicBool::new(false),
        wake: Notify::new(),
        max_body: config.max_body,
        playbooks: config.playbooks,
        mappings: config.mappings,
        slack_approvers: config.slack_approvers,
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
    let refresher = config.refresh.map(|settings| {
        let shared = shared.clone();
        tokio::spawn(async move {
            refresh::keep_fresh(settings, &shared.metrics.git, shared.log.clone()).await;
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(shared.clone());
    let stopped = async {
        let _ = stop_rx.await;
    };
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
