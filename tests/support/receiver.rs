//! A recording HTTP server on 127.0.0.1 for tests: stands in for Slack,
//! Teams, PagerDuty, webhooks and Alertmanager's webhook receiver.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A scripted reply: status, headers, body.
pub type Reply = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// An HTTP server on 127.0.0.1 that records requests and answers from a script.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Answers each request with the next `(status, headers, body)`; the last one repeats.
    pub fn start(replies: Vec<Reply>) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rec = received.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let replies = Arc::new(replies);
                let counter = Arc::new(Mutex::new(0usize));
                let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                    let rec = rec.clone();
                    let replies = replies.clone();
                    let counter = counter.clone();
                    async move {
                        let path = req.uri().to_string();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect();
                        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
                            .await
                            .unwrap_or_default();
                        rec.lock().unwrap().push(Received {
                            path,
                            headers,
                            body: String::from_utf8_lossy(&bytes).into_owned(),
                        });
                        let i = {
                            let mut c = counter.lock().unwrap();
                            *c += 1;
                            (*c - 1).min(replies.len() - 1)
                        };
                        let (status, hdrs, body) = replies[i].clone();
                        let mut resp = axum::response::Response::builder().status(status);
                        for (k, v) in hdrs {
                            resp = resp.header(k, v);
                        }
                        resp.body(axum::body::Body::from(body)).unwrap()
                    }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver started");
        Receiver {
            addr,
            received,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
