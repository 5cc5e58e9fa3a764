//! `http` steps and the HTTP transport that notifications share.
//!
//! Requests are bounded (timeout, redirects, body size); 429 and 5xx are
//! marked retryable and carry `Retry-After` so the scheduler can honour it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Attempt;
use super::shell::wait_cancel;
use crate::engine::context::{StepOutput, StepStatus};

/// Most bytes of a response body kept.
pub const BODY_CAP: usize = 1024 * 1024;

/// A fully rendered request.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Request {
    /// Method.
    pub method: String,
    /// URL with query.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes (UTF-8 text or JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Accepted statuses; empty means any 2xx.
    #[serde(skip)]
    pub expect: Vec<u16>,
    /// Skip certificate checks.
    #[serde(skip)]
    pub insecure: bool,
    /// Redirect limit.
    #[serde(skip)]
    pub max_redirects: u32,
}

/// Reuses clients across steps of a run (connection pooling, one TLS setup).
#[derive(Default)]
pub struct Clients {
    cache: Mutex<HashMap<(bool, u32), reqwest::Client>>,
}

impl Clients {
    fn get(&self, insecure: bool, redirects: u32) -> Result<reqwest::Client, String> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| "HTTP client cache poisoned".to_string())?;
        if let Some(c) = cache.get(&(insecure, redirects)) {
            return Ok(c.clone());
        }
        let policy = if redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(redirects as usize)
        };
        let client = crate::tls::client_builder()
            .redirect(policy)
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("irctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        cache.insert((insecure, redirects), client.clone());
        Ok(client)
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| "the server".into())
}

fn describe_error(e: &reqwest::Error, url: &str) -> String {
    let host = host_of(url);
    let mut msg = if e.is_timeout() {
        format!("request to {host} timed out")
    } else if e.is_connect() {
        format!("cannot connect to {host}")
    } else if e.is_redirect() {
        format!("too many redirects from {host}")
    } else {
        format!("request to {host} failed")
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        msg.push_str(": ");
        msg.push_str(&cause);
    }
    msg
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    delta
        .to_std()
        .ok()
        .map(|d| d.min(Duration::from_secs(3600)))
}

/// Sends one request, bounded by `timeout` and `cancel`.
pub async fn send(
    clients: &Clients,
    req: &Request,
    timeout: Duration,
    mut cancel: watch::Receiver<Option<String>>,
) -> Attempt {
    let started = Instant::now();
    let mut output = StepOutput::empty(StepStatus::Failed);
    let client = match clients.get(req.insecure, req.max_redirects) {
        Ok(c) => c,
        Err(e) => return Attempt::failed(output, e, false),
    };
    let method = match reqwest::Method::from_bytes(req.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            return Attempt::failed(
                output,
                format!("invalid HTTP method `{}`", req.method),
                false,
            );
        }
    };
    let mut builder = client.request(method, &req.url).timeout(timeout);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let exchange = async {
        let resp = builder
            .send()
            .await
            .map_err(|e| (describe_error(&e, &req.url), true))?;
        let status = resp.status().as_u16();
        let headers: BTreeMap<String, String> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let after = retry_after(resp.headers());
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| (describe_error(&e, &req.url), true))?
        {
            let room = BODY_CAP.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, (String, bool)>((status, headers, body, truncated, after))
    };
    let result = tokio::select! {
        r = exchange => Some(r),
        _ = wait_cancel(&mut cancel) => None,
    };
    output.duration_ms = started.elapsed().as_millis() as u64;
    let Some(result) = result else {
        output.status = StepStatus::Cancelled;
        let mut a = Attempt::failed(output, "cancelled".into(), false);
        a.status = StepStatus::Cancelled;
        return a;
    };
    match result {
        Err((msg, retryable)) => {
            if msg.contains("timed out") {
                output.status = StepStatus::TimedOut;
                let mut a = Attempt::failed(output, msg, retryable);
                a.status = StepStatus::TimedOut;
                return a;
            }
            Attempt::failed(output, msg, retryable)
        }
        Ok((status, headers, body, truncated, after)) => {
            output.http_status = Some(status);
            output.headers = headers;
            output.json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            output.body = String::from_utf8_lossy(&body).into_owned();
            if truncated {
                output.body.push_str("\n[irctl: body truncated at 1 MiB]");
            }
            let accepted = if req.expect.is_empty() {
                (200..300).contains(&status)
            } else {
                req.expect.contains(&status)
            };
            if accepted {
                output.status = StepStatus::Succeeded;
                return Attempt::ok(output);
            }
            let retryable = status == 429 || status >= 500;
            let snippet: String = output.body.chars().take(200).collect();
            let expected = if req.expect.is_empty() {
                "2xx".to_string()
            } else {
                req.expect
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut a = Attempt::failed(
                output,
                format!(
                    "{} answered HTTP {status} (expected {expected}){}",
                    host_of(&req.url),
                    if snippet.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", snippet.trim())
                    }
                ),
                retryable,
            );
            a.retry_after = after;
            a
        }
    }
}
