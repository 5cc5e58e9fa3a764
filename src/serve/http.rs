//! The HTTP face of serve: the hooks senders post to, health, metrics and
//! the read-only run API.
//!
//! A hook checks, in this order, and answers in codes senders act on:
//! draining (503 + `Retry-After`), body size (413), credentials on the raw
//! bytes (401 none given, 403 wrong or stale), parse (400 with the
//! parser's message), then stores durably and answers 202 — also for a
//! copy of a delivery already stored. `/hooks/NAME` serves the built-in
//! senders and, by exact name, the playbook source's payload mappings; any
//! other name is 404. A full queue or a failing store is
//! 503 + `Retry-After`: Alertmanager and PagerDuty retry a 5xx, and
//! Alertmanager does not retry a 429.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::Shared;
use super::auth::Denied;
use super::metrics::RunCounts;
use super::source::{self, Rejected, Source};
use super::store::{Enqueued, NewDelivery, Store};
use crate::lifecycle::held;
use crate::record::{self, RunFilter, Scope};

/// Seconds a sender is asked to wait when the queue is full.
const RETRY_FULL_SECS: u64 = 5;
/// Seconds a sender is asked to wait while serve restarts.
const RETRY_DRAINING_SECS: u64 = 10;
/// How long `/metrics` reuses its count of recorded runs.
const RUNS_CACHE: Duration = Duration::from_secs(15);

/// The router, with `shared` as its state.
pub fn router<S: Store>(shared: Arc<Shared<S>>) -> Router {
    let limit = shared.max_body;
    Router::new()
        .route("/hooks/{source}", post(hook::<S>))
        .route(
            "/hooks/slack/interactivity",
            post(super::slack::interactivity::<S>),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/api/runs", get(runs::<S>))
        .route("/api/runs/{id}", get(run::<S>))
        .route("/api/deliveries", get(deliveries::<S>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

pub(super) fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn retry_later(secs: u64, why: &str) -> Response {
    let mut r = answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": why }));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn denied(d: Denied) -> (Response, &'static str) {
    match d {
        Denied::Missing => {
            let mut r = answer(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "credentials required" }),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"irctl\""),
            );
            (r, "unauthorized")
        }
        Denied::Invalid(why) => (
            answer(StatusCode::FORBIDDEN, json!({ "error": why })),
            "forbidden",
        ),
        Denied::NotConfigured => (
            answer(
                StatusCode::FORBIDDEN,
                json!({ "error": "no credential is configured for this endpoint" }),
            ),
            "forbidden",
        ),
    }
}

async fn hook<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The name is untrusted: it only ever selects a built-in source or a
    // loaded mapping, is never echoed, and never becomes a metric label.
    // One snapshot for the whole request: a reload cannot change it midway.
    let served = shared.served.get();
    let Some(source) = Source::for_hook(&name, &served.mappings) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({ "error": "no such hook; use alertmanager, grafana, pagerduty, cloudevents or the name of a payload mapping" }),
        );
    };
    let label = source.store_name();
    let (response, outcome) = receive(&shared, source, &served.mappings, &headers, body).await;
    shared.metrics.delivery(&label, outcome);
    response
}

async fn receive<S: Store>(
    shared: &Shared<S>,
    source: Source,
    mappings: &[crate::incident::Mapping],
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (Response, &'static str) {
    if shared.draining.load(Ordering::Relaxed) {
        return (
            retry_later(RETRY_DRAINING_SECS, "draining: irctl serve is stopping"),
            "draining",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({ "error": format!("body larger than {} bytes", shared.max_body) }),
                ),
                "too_large",
            );
        }
        Err(e) => {
            return (
                answer(StatusCode::BAD_REQUEST, json!({ "error": e.body_text() })),
                "malformed",
            );
        }
    };
    if !shared.insecure_no_auth {
        let now = chrono::Utc::now().timestamp();
        if let Err(d) = shared.credentials().check(&source, headers, &body, now) {
            return denied(d);
        }
    }
    let parsed = match source::parse(&source, headers, &body, mappings) {
        Ok(p) => p,
        Err(Rejected::Malformed(e)) => {
            return (
                answer(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() })),
                "malformed",
            );
        }
        Err(Rejected::Ignored(why)) => {
            return (
                answer(
                    StatusCode::ACCEPTED,
                    json!({ "status": "ignored", "reason": why }),
                ),
                "ignored",
            );
        }
    };
    let delivery = NewDelivery {
        source,
        dedup_key: parsed.dedup_key,
        payload: body.to_vec(),
        received_ms: chrono::Utc::now().timestamp_millis(),
        incident_key: parsed.incident.id.clone(),
        resolves: crate::lifecycle::phase(&parsed.incident) == crate::lifecycle::Phase::Resolved,
    };
    match shared.store.enqueue(delivery).await {
        Ok(Enqueued::Accepted(id)) => {
            shared.wake.notify_one();
            (
                answer(
                    StatusCode::ACCEPTED,
                    json!({ "status": "accepted", "delivery": id, "incident": parsed.incident.id }),
                ),
                "accepted",
            )
        }
        Ok(Enqueued::Duplicate(id)) => (
            answer(
                StatusCode::ACCEPTED,
                json!({ "status": "duplicate", "delivery": id }),
            ),
            "duplicate",
        ),
        Ok(Enqueued::Full) => (
            retry_later(RETRY_FULL_SECS, "the queue is full"),
            "queue_full",
        ),
        Err(e) => {
            (shared.log)(&format!("error: cannot store a delivery: {e:#}"));
            (
                retry_later(RETRY_FULL_SECS, "the delivery could not be stored"),
                "store_error",
            )
        }
    }
}

async fn readyz<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    if shared.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    if shared.served.get().playbooks == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "no playbooks loaded\n").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), shared.store.probe()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            format!("ready\n{}", shared.served.describe()),
        )
            .into_response(),
        Ok(Err(e)) => {
            (shared.log)(&format!("error: readiness probe: {e:#}"));
            (StatusCode::SERVICE_UNAVAILABLE, "store not writable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store not answering\n").into_response(),
    }
}

async fn metrics<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    let runs = run_counts(&shared).await;
    let mut text = shared.metrics.render(shared.store.depth(), &runs);
    shared.served.render(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Recorded runs by (playbook, status), read from the state directory at
/// most every [`RUNS_CACHE`].
async fn run_counts<S: Store>(shared: &Arc<Shared<S>>) -> RunCounts {
    if let Ok(cache) = shared.runs_cache.lock()
        && let Some((at, counts)) = cache.as_ref()
        && at.elapsed() < RUNS_CACHE
    {
        return counts.clone();
    }
    let dir = shared.launcher.state_dir.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let mut counts = BTreeMap::new();
        if let Ok(store) = record::Store::open_scoped(&dir, Scope::All) {
            for run in &store.runs {
                let key = (run.summary.playbook.clone(), run.summary.status.clone());
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
    })
    .await
    .unwrap_or_default();
    if let Ok(mut cache) = shared.runs_cache.lock() {
        *cache = Some((Instant::now(), counts.clone()));
    }
    counts
}

fn reader_denied<S: Store>(shared: &Shared<S>, headers: &HeaderMap) -> Option<Response> {
    if shared.insecure_no_auth {
        return None;
    }
    shared
        .credentials()
        .check_reader(headers)
        .err()
        .map(|d| denied(d).0)
}

async fn runs<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Response {
    if let Some(r) = reader_denied(&shared, &headers) {
        return r;
    }
    let dir = shared.launcher.state_dir.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let store = record::Store::open_scoped(&dir, Scope::All)?;
        // As `irctl runs` lists them: with held attempts, repeats on `?all=true`.
        let waiting = super::sqlite::waiting(&dir)?;
        let (rows, _) = held::list(&store, &RunFilter::default(), q.all, waiting)?;
        Ok::<_, anyhow::Error>(serde_json::to_value(rows)?)
    })
    .await;
    match listed {
        Ok(Ok(v)) => answer(StatusCode::OK, v),
        Ok(Err(e)) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("{e:#}") }),
        ),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }),
        ),
    }
}

async fn run<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = reader_denied(&shared, &headers) {
        return r;
    }
    let dir = shared.launcher.state_dir.clone();
    let found = tokio::task::spawn_blocking(move || {
        let store = record::Store::open_scoped(&dir, Scope::Run(&id))?;
        let run = store.run(&id)?;
        Ok::<_, anyhow::Error>(json!({ "summary": run.summary, "events": run.events }))
    })
    .await;
    match found {
        Ok(Ok(v)) => answer(StatusCode::OK, v),
        Ok(Err(e)) => answer(StatusCode::NOT_FOUND, json!({ "error": format!("{e:#}") })),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }),
        ),
    }
}

#[derive(serde::Deserialize)]
struct RunsQuery {
    #[serde(default)]
    all: bool,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn deliveries<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = reader_denied(&shared, &headers) {
        return r;
    }
    let limit = q.limit.unwrap_or(100).min(100_000);
    match shared.store.list(limit).await {
        Ok(rows) => answer(StatusCode::OK, json!(rows)),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("{e:#}") }),
        ),
    }
}
