//! `http` steps and the HTTP transport that notifications share.
//!
//! Requests are bounded (timeout, redirects, body size). The transport
//! reports what the server answered, or a typed error naming `host:port`;
//! which statuses are accepted or worth a retry is the judge's call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::response::{HttpReply, Response, StepError};
use super::shell::wait_cancel;

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
    /// The body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
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

impl Request {
    /// `host` or `host:port` as users know the server, for messages.
    pub fn host(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_else(|| "the server".into())
    }

    /// The value of header `name` (case-insensitive), as sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request body; a JSON body stays a value so it can still be changed
/// (a drill's routing key) without parsing the text back.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Text as rendered.
    Text(String),
    /// A JSON document, sent in its compact form.
    Json(serde_json::Value),
}

impl std::fmt::Display for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Text(t) => f.write_str(t),
            Body::Json(j) => write!(f, "{j}"),
        }
    }
}

// The timeline records the body as the text sent.
impl serde::Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Body::Text(t) => s.serialize_str(t),
            Body::Json(_) => s.serialize_str(&self.to_string()),
        }
    }
}

/// Reuses clients across steps of a run (connection pooling, one TLS setup).
#[derive(Default)]
pub struct Clients {
    cache: Mutex<HashMap<(bool, u32), reqwest::Client>>,
}

impl Clients {
    fn get(&self, insecure: bool, redirects: u32) -> Result<reqwest::Client, StepError> {
        // The cache holds finished clients only: a panic elsewhere cannot leave it half-written.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
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
            .map_err(StepError::Client)?;
        cache.insert((insecure, redirects), client.clone());
        Ok(client)
    }
}

/// The typed error for a transport failure, naming the server and the innermost cause.
fn transport_error(e: &reqwest::Error, req: &Request) -> StepError {
    let host = req.host();
    let mut cause = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        StepError::RequestTimeout { host, cause }
    } else if e.is_connect() {
        StepError::Connect { host, cause }
    } else if e.is_redirect() {
        StepError::Redirects { host, cause }
    } else {
        StepError::Request { host, cause }
    }
}

/// Sends one request, bounded by `timeout` and `cancel`, and reports the answer.
pub async fn send(
    clients: &Clients,
    req: &Request,
    timeout: Duration,
    mut cancel: watch::Receiver<Option<String>>,
) -> Response {
    let started = Instant::now();
    let client = match clients.get(req.insecure, req.max_redirects) {
        Ok(c) => c,
        Err(e) => return Response::failed(e, Duration::ZERO),
    };
    let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
        return Response::failed(StepError::Method(req.method.clone()), Duration::ZERO);
    };
    let mut builder = client.request(method, &req.url).timeout(timeout);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.to_string());
    }
    let exchange = async {
        let mut resp = builder.send().await.map_err(|e| transport_error(&e, req))?;
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
        let mut body: Vec<u8> = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&e, req))? {
            let room = BODY_CAP.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, StepError>((status, headers, body, truncated))
    };
    let result = tokio::select! {
        r = exchange => r,
        _ = wait_cancel(&mut cancel) => Err(StepError::Cancelled { reason: None }),
    };
    let duration = started.elapsed();
    match result {
        Ok((status, headers, body, truncated)) => Response::Http(HttpReply {
            status,
            headers,
            body,
            truncated,
            duration,
        }),
        Err(error) => Response::failed(error, duration),
    }
}
