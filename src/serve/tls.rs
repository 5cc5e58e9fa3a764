//! HTTPS for `irctl serve`: rustls (ring provider), optional mutual TLS,
//! certificate rotation without a restart, and handshakes that cannot hold
//! the server.
//!
//! The TCP accept loop hands each connection to its own task that does the
//! TLS handshake under a deadline, so a client that connects and sends
//! nothing (slowloris) only holds one of [`MAX_HANDSHAKES`] handshake slots
//! until the deadline, never the accept loop or a run worker. Finished
//! handshakes reach axum through [`TlsListener`]. A plain-HTTP request to
//! the TLS port gets a 400 that says to use `https://`.
//!
//! The certificate, key and client CA are read again when one of the files
//! changes (cert-manager rewrites a mounted Secret in place) and on SIGHUP
//! (through serve's one reload path, [`super::reload`]); a pair that does
//! not load keeps the current one, with an error logged.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Log;

/// Handshakes in progress at once; connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 1024;
/// How often the certificate files are checked for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// At most one logged handshake failure per this many seconds.
const FAILURE_LOG_EVERY: i64 = 10;

/// Where the certificate and keys are, as the flags say.
#[derive(Clone, Debug)]
pub struct Settings {
    /// PEM certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// PEM private key of the leaf (`--tls-key`).
    pub key: PathBuf,
    /// PEM CA certificates client certificates must chain to (`--tls-client-ca`).
    pub client_ca: Option<PathBuf>,
    /// How long a client has to finish the handshake (`--tls-handshake-timeout`).
    pub handshake_timeout: Duration,
}

/// The current TLS configuration, replaced whole when the files change.
pub struct Certs {
    settings: Settings,
    current: RwLock<Arc<ServerConfig>>,
    stamp: RwLock<Vec<Option<FileStamp>>>,
}

/// What tells that a file changed: a rotated Secret gets a new inode.
type FileStamp = (i64, i64, u64, u64);

impl Certs {
    /// Loads the files `settings` names; errors name the file at fault.
    pub fn load(settings: Settings) -> anyhow::Result<Certs> {
        let stamp = stamps(&settings);
        let config = server_config(&settings)?;
        Ok(Certs {
            settings,
            current: RwLock::new(config),
            stamp: RwLock::new(stamp),
        })
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on success new handshakes use them, on
    /// failure the current ones stay. Says which, for the log.
    pub fn reload(&self) -> anyhow::Result<()> {
        let stamp = stamps(&self.settings);
        if let Ok(mut s) = self.stamp.write() {
            *s = stamp;
        }
        let config = server_config(&self.settings)?;
        if let Ok(mut c) = self.current.write() {
            *c = config;
        }
        Ok(())
    }

    /// Reads the files again because of `why`; the line to log.
    pub fn reload_for(&self, why: &str) -> String {
        match self.reload() {
            Ok(()) => format!(
                "TLS: reloaded `{}` and `{}` ({why})",
                self.settings.cert.display(),
                self.settings.key.display()
            ),
            Err(e) => format!(
                "error: TLS: cannot reload ({why}), still serving the previous certificate: {e:#}"
            ),
        }
    }

    fn changed(&self) -> bool {
        let now = stamps(&self.settings);
        self.stamp.read().map(|s| *s != now).unwrap_or(true)
    }
}

fn stamps(settings: &Settings) -> Vec<Option<FileStamp>> {
    [
        Some(&settings.cert),
        Some(&settings.key),
        settings.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.ino(), m.len()))
    })
    .collect()
}

/// Builds the rustls configuration from the files.
fn server_config(s: &Settings) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&s.cert, "`--tls-cert`")?;
    let key_bytes = read(&s.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        anyhow::anyhow!(
            "`{}` (`--tls-key`) holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`): {e}",
            s.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?;
    let builder = match &s.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca, "`--tls-client-ca`")? {
                roots.add(cert).map_err(|e| {
                    anyhow::anyhow!(
                        "`{}` (`--tls-client-ca`) holds a certificate that is not a usable CA: {e}",
                        ca.display()
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| {
                    format!("cannot verify client certificates with `{}`", ca.display())
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "the key in `{}` (`--tls-key`) does not belong to the certificate in `{}` (`--tls-cert`)",
            s.key.display(),
            s.cert.display()
        ),
        other => anyhow::anyhow!(
            "cannot use the certificate in `{}` with the key in `{}`: {other}",
            s.cert.display(),
            s.key.display()
        ),
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// Every certificate in the PEM file at `path`; none is an error.
fn read_certs(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("`{}` ({flag}) is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "`{}` ({flag}) holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        );
    }
    Ok(certs)
}

/// Reloads `certs` when a file changes, until the task is dropped. SIGHUP
/// reaches [`Certs::reload_for`] through serve's one reload path.
pub async fn watch(certs: Arc<Certs>, log: Log) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if certs.changed() {
            log(&certs.reload_for("a file changed"));
        }
    }
}

/// The accepted, handshaken connections, as axum takes them.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// Starts the accept loop on `tcp`; handshakes use `certs` as they are
/// when the connection comes in.
pub fn listen(tcp: TcpListener, certs: Arc<Certs>, log: Log) -> anyhow::Result<TlsListener> {
    let local = tcp
        .local_addr()
        .context("cannot read the listening address")?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(tcp, certs, tx, log));
    Ok(TlsListener { rx, local })
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    certs: Arc<Certs>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    log: Log,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let failures = Arc::new(FailureLog::default());
    let timeout = certs.settings.handshake_timeout;
    while !tx.is_closed() {
        let (stream, peer) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                // Out of file descriptors, or a connection reset before it
                // was taken: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let acceptor = TlsAcceptor::from(certs.current());
        let tx = tx.clone();
        let failures = failures.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(timeout, handshake(stream, acceptor)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => failures.log(&log, peer, &e),
                Err(_) => {}
            }
        });
    }
}

/// The handshake; `None` when the client spoke plain HTTP (and was told).
async fn handshake(
    stream: TcpStream,
    acceptor: TlsAcceptor,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE {
        plain_http(stream).await;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// Answers a plain-HTTP request on the TLS port with a 400 and closes.
async fn plain_http(mut stream: TcpStream) {
    const BODY: &str = "this port speaks HTTPS: use an https:// URL\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Logs handshake failures (a client without the right certificate) at
/// most once per [`FAILURE_LOG_EVERY`] seconds, with how many were not shown.
#[derive(Default)]
struct FailureLog {
    last: AtomicI64,
    unshown: AtomicU64,
}

impl FailureLog {
    fn log(&self, log: &Log, peer: SocketAddr, e: &std::io::Error) {
        let now = chrono::Utc::now().timestamp();
        let last = self.last.load(Ordering::Relaxed);
        if now - last < FAILURE_LOG_EVERY
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unshown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unshown = self.unshown.swap(0, Ordering::Relaxed);
        let more = if unshown > 0 {
            format!(" ({unshown} more since the last one shown)")
        } else {
            String::new()
        };
        log(&format!("TLS handshake with {peer} failed: {e}{more}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
            handshake_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn errors_name_the_file_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let e = format!("{:#}", Certs::load(s.clone()).err().unwrap());
        assert!(e.contains("cannot read `") && e.contains("cert.pem"), "{e}");
        std::fs::write(&s.cert, "not a certificate\n").unwrap();
        let e = format!("{:#}", Certs::load(s.clone()).err().unwrap());
        assert!(e.contains("holds no PEM certificate"), "{e}");
        assert!(e.contains("cert.pem"), "{e}");
        std::fs::write(
            &s.cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &s.key,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = format!("{:#}", Certs::load(s).err().unwrap());
        assert!(
            e.contains("key.pem") && e.contains("no PEM private key"),
            "{e}"
        );
    }
}
