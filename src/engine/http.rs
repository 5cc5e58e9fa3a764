//! `http` steps and the HTTP transport that notifications share.
//!
//! Requests are bounded (timeout, redirects, body size). The transport
//! reports what the server answered, or a typed error naming `host:port`;
//! which statuses are accepted or worth a retry is the judge's call.
//!
//! Redirects are followed here rather than by reqwest, because reqwest
//! only drops `Authorization`, `Cookie` and their kin when a redirect
//! leaves the origin: a secret in `x-api-key` would follow it. Every header
//! whose value carries a secret (in any form the run's redactor knows) is
//! dropped on a hop to another scheme, host or port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::response::{HttpReply, Response, StepError};
use super::shell::wait_cancel;
use crate::secret::Redactor;

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

/// Reuses clients across steps of a run (connection pooling, one TLS setup),
/// and knows the run's secrets so none follows a redirect to another host.
#[derive(Default)]
pub struct Clients {
    cache: Mutex<HashMap<bool, reqwest::Client>>,
    secrets: Redactor,
}

impl Clients {
    /// Clients for a run whose secrets `secrets` recognises.
    pub fn new(secrets: Redactor) -> Self {
        Clients {
            cache: Mutex::default(),
            secrets,
        }
    }

    fn get(&self, insecure: bool) -> Result<reqwest::Client, StepError> {
        // The cache holds finished clients only: a panic elsewhere cannot leave it half-written.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get(&insecure) {
            return Ok(c.clone());
        }
        let client = crate::tls::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("irctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StepError::Client)?;
        cache.insert(insecure, client.clone());
        Ok(client)
    }

    /// Whether header `name: value` must not leave the origin it was written for.
    fn carries_secret(&self, name: &str, value: &str) -> bool {
        const CREDENTIALS: &[&str] = &[
            "authorization",
            "proxy-authorization",
            "cookie",
            "www-authenticate",
        ];
        CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c))
            || (!self.secrets.is_empty() && self.secrets.redact(value) != value)
    }
}

/// Scheme, host and port: what must stay the same for secrets to follow a redirect.
fn origin(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_string(),
        url.host_str().map(str::to_string),
        url.port_or_known_default(),
    )
}

/// The next hop of a redirect answer, if `status` is one and names a target.
fn redirect_target(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    from: &reqwest::Url,
) -> Option<reqwest::Url> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    from.join(location)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
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
    let client = match clients.get(req.insecure) {
        Ok(c) => c,
        Err(e) => return Response::failed(e, Duration::ZERO),
    };
    let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
        return Response::failed(StepError::Method(req.method.clone()), Duration::ZERO);
    };
    let exchange = async {
        let mut url = reqwest::Url::parse(&req.url).map_err(|e| StepError::Request {
            host: req.host(),
            cause: Some(e.to_string()),
        })?;
        let mut method = method;
        let mut headers = req.headers.clone();
        let mut body = req.body.as_ref().map(Body::to_string);
        let mut hops = 0;
        let mut resp = loop {
            let left = timeout.saturating_sub(started.elapsed());
            let mut builder = client.request(method.clone(), url.clone()).timeout(left);
            for (k, v) in &headers {
                builder = builder.header(k, v);
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let resp = builder.send().await.map_err(|e| transport_error(&e, req))?;
            let status = resp.status().as_u16();
            let next = match redirect_target(status, resp.headers(), &url) {
                Some(next) if req.max_redirects > 0 => next,
                _ => break resp,
            };
            if hops == req.max_redirects {
                return Err(StepError::Redirects {
                    host: req.host(),
                    cause: Some("too many redirects".into()),
                });
            }
            hops += 1;
            if origin(&next) != origin(&url) {
                headers.retain(|(k, v)| !clients.carries_secret(k, v));
            }
            // As browsers do: 303, and 301/302 after a POST, continue as a GET without a body.
            if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                if method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                }
                body = None;
                headers.retain(|(k, _)| {
                    !k.eq_ignore_ascii_case("content-type")
                        && !k.eq_ignore_ascii_case("content-length")
                });
            }
            url = next;
        };
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
