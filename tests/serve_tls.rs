//! `irctl serve` over HTTPS through the real binary: certificates made by
//! the `openssl` CLI in each test, a rustls client speaking to the port.
//! HTTPS deliveries are accepted; mutual TLS refuses clients without a
//! certificate or with one from another CA; a plain-HTTP request and a
//! client that never sends a byte are turned away without holding the
//! server; a rotated certificate is served after SIGHUP, and a broken one
//! keeps the old; bad files stop serve at start with exit 2 naming them.

#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serve::{Server, alertmanager};
use wait::wait_until;

const TOKEN: &str = "tls-t0ken-0001";
const STARTS: &str = "2024-01-01T10:00:00Z";

/// Whether the `openssl` CLI is here (`.ci/run` installs it).
fn have_openssl() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: no `openssl` CLI to make test certificates (`.ci/run` installs it)");
    }
    found
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name`: `name.pem` and `name.key` in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf `name.pem`/`name.key` signed by CA `ca`, for `usage` (`serverAuth`, `clientAuth`).
fn leaf(dir: &Path, ca: &str, name: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// A temp dir with a playbook folder, the secrets file, CA `ca` and server `server`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("irctl-serve-tls")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/p.yaml"),
        "version: 1\nname: p\ntitle: P\nmatch:\n  labels: ['alertname=\"Never\"']\nsteps:\n  - id: a\n    shell: \"true\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    ca(dir.path(), "ca");
    leaf(dir.path(), "ca", "server", "serverAuth");
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--playbooks",
        "playbooks",
        "--secrets-file",
        "secrets.env",
        "--tls-cert",
        "server.pem",
        "--tls-key",
        "server.key",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, &args, &[])
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A client trusting `ca.pem` in `dir`, presenting `identity` (`name.pem`/`name.key`) when given.
fn client(dir: &Path, identity: Option<&str>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&dir.join("ca.pem")) {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(name) => {
            let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
            builder
                .with_client_auth_cert(certs(&dir.join(format!("{name}.pem"))), key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// What an HTTPS request got: the status line's code and the body, or the
/// error, and the server's leaf certificate.
struct Answer {
    result: Result<(u16, String), String>,
    peer: Option<Vec<u8>>,
}

/// One HTTPS request with `Connection: close`.
fn https(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Answer {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut result = tls
        .write_all(head.as_bytes())
        .and_then(|()| tls.write_all(body))
        .map_err(|e| e.to_string());
    let mut raw = Vec::new();
    if result.is_ok() {
        result = tls
            .read_to_end(&mut raw)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let result = result.and_then(|()| {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((status, body.to_string()))
    });
    Answer { result, peer }
}

fn post_alert(addr: SocketAddr, config: Arc<rustls::ClientConfig>, name: &str) -> Answer {
    https(
        addr,
        config,
        "POST",
        "/hooks/alertmanager",
        alertmanager(name, "firing", STARTS).as_bytes(),
    )
}

/// Deliveries serve stored, read over HTTPS.
fn stored(server: &Server, config: Arc<rustls::ClientConfig>) -> usize {
    let a = https(
        server.addr,
        config,
        "GET",
        "/api/deliveries?limit=1000",
        b"",
    );
    let (status, body) = a.result.expect("GET /api/deliveries");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn https_deliveries_are_accepted_and_plain_http_and_idle_clients_turned_away() {
    if !have_openssl() {
        return;
    }
    let dir = setup();
    let server = start(dir.path(), &["--tls-handshake-timeout", "1s"]);
    wait_until(
        Instant::now() + Duration::from_secs(10),
        Duration::from_millis(20),
        "serve says it listens on https://",
        || {
            server
                .stderr()
                .contains("listening on https://")
                .then_some(())
        },
    );
    // A slowloris client connects and sends nothing; it must not stop others.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let a = post_alert(server.addr, client(dir.path(), None), "TlsAlert");
    assert_eq!(a.result.clone().map(|r| r.0), Ok(202), "{:?}", a.result);
    let a = https(
        server.addr,
        client(dir.path(), None),
        "GET",
        "/healthz",
        b"",
    );
    assert_eq!(a.result.map(|r| r.0), Ok(200));
    // The idle connections are closed once the handshake deadline passes.
    let started = Instant::now();
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0))
                || n.as_ref()
                    .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
            "an idle connection was not closed: {n:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "idle connections held for {:?}",
        started.elapsed()
    );
    // Plain HTTP to the TLS port: a 400 that says what to do, nothing stored.
    let plain = serve::try_request(
        server.addr,
        "POST",
        "/hooks/alertmanager",
        &serve::bearer(TOKEN),
        alertmanager("PlainAlert", "firing", STARTS).as_bytes(),
    )
    .expect("a plain-HTTP answer");
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.body.contains("https://"), "{}", plain.body);
    assert_eq!(stored(&server, client(dir.path(), None)), 1);
    // A client that does not trust serve's CA refuses it.
    ca(dir.path(), "ca");
    let a = post_alert(server.addr, client(dir.path(), None), "Untrusted");
    assert!(a.result.is_err(), "{:?}", a.result);
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    if !have_openssl() {
        return;
    }
    let dir = setup();
    leaf(dir.path(), "ca", "alertmanager", "clientAuth");
    ca(dir.path(), "other");
    leaf(dir.path(), "other", "stranger", "clientAuth");
    let server = start(dir.path(), &["--tls-client-ca", "ca.pem"]);

    let none = post_alert(server.addr, client(dir.path(), None), "NoCert");
    assert!(
        none.result.is_err(),
        "no client certificate: {:?}",
        none.result
    );
    let stranger = post_alert(
        server.addr,
        client(dir.path(), Some("stranger")),
        "Stranger",
    );
    assert!(
        stranger.result.is_err(),
        "a certificate from another CA: {:?}",
        stranger.result
    );
    let good = post_alert(
        server.addr,
        client(dir.path(), Some("alertmanager")),
        "Good",
    );
    assert_eq!(
        good.result.clone().map(|r| r.0),
        Ok(202),
        "{:?}",
        good.result
    );
    assert_eq!(stored(&server, client(dir.path(), Some("alertmanager"))), 1);
    wait_until(
        Instant::now() + Duration::from_secs(10),
        Duration::from_millis(50),
        "the refused handshake is logged",
        || server.stderr().contains("TLS handshake with").then_some(()),
    );
    // Plain HTTP is not a way around the client certificate either.
    let plain = serve::try_request(
        server.addr,
        "GET",
        "/api/deliveries",
        &serve::bearer(TOKEN),
        b"",
    )
    .expect("a plain-HTTP answer");
    assert_eq!(plain.status, 400);
}

#[test]
fn a_rotated_certificate_is_served_after_sighup_and_a_broken_one_keeps_the_old() {
    if !have_openssl() {
        return;
    }
    let dir = setup();
    let server = start(dir.path(), &[]);
    let der = |name: &str| certs(&dir.path().join(name))[0].to_vec();
    let first = der("server.pem");
    let a = post_alert(server.addr, client(dir.path(), None), "Before");
    assert_eq!(a.result.map(|r| r.0), Ok(202));
    assert_eq!(a.peer.as_deref(), Some(first.as_slice()));

    // cert-manager writes a new pair in place.
    leaf(dir.path(), "ca", "server", "serverAuth");
    let second = der("server.pem");
    assert_ne!(first, second);
    server.signal(Signal::SIGHUP);
    let peer = wait_until(
        Instant::now() + Duration::from_secs(20),
        Duration::from_millis(100),
        "the new certificate is served",
        || {
            let a = https(
                server.addr,
                client(dir.path(), None),
                "GET",
                "/healthz",
                b"",
            );
            a.peer.filter(|p| *p == second)
        },
    );
    assert_eq!(peer, second);
    assert!(
        server.stderr().contains("TLS: reloaded"),
        "{}",
        server.stderr()
    );

    // A key that does not match: logged, and the current pair stays.
    std::fs::copy(dir.path().join("ca.key"), dir.path().join("server.key")).unwrap();
    server.signal(Signal::SIGHUP);
    wait_until(
        Instant::now() + Duration::from_secs(20),
        Duration::from_millis(100),
        "the failed reload is logged",
        || server.stderr().contains("cannot reload").then_some(()),
    );
    assert!(
        server
            .stderr()
            .contains("does not belong to the certificate"),
        "{}",
        server.stderr()
    );
    let a = post_alert(server.addr, client(dir.path(), None), "After");
    assert_eq!(a.result.map(|r| r.0), Ok(202));
    assert_eq!(a.peer.as_deref(), Some(second.as_slice()));
}

/// Runs serve expecting it to stop at once; its exit code and stderr.
fn fails_to_start(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--state-dir", "state"])
        .args(["--playbooks", "playbooks", "--secrets-file", "secrets.env"])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("IRCTL_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        "serve exits",
        || child.try_wait().unwrap(),
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn bad_tls_files_stop_serve_at_start_naming_the_file() {
    if !have_openssl() {
        return;
    }
    let dir = setup();
    let d = dir.path();
    let path = |n: &str| -> PathBuf { d.join(n) };
    std::fs::write(path("junk.pem"), "hello\n").unwrap();
    leaf(d, "ca", "other", "serverAuth");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--tls-cert", "missing.pem", "--tls-key", "server.key"],
            "missing.pem",
        ),
        (
            &["--tls-cert", "junk.pem", "--tls-key", "server.key"],
            "junk.pem` (`--tls-cert`) holds no PEM certificate",
        ),
        (
            &["--tls-cert", "server.pem", "--tls-key", "server.pem"],
            "server.pem` (`--tls-key`) holds no PEM private key",
        ),
        (
            &["--tls-cert", "server.pem", "--tls-key", "other.key"],
            "other.key` (`--tls-key`) does not belong to the certificate in",
        ),
        (
            &[
                "--tls-cert",
                "server.pem",
                "--tls-key",
                "server.key",
                "--tls-client-ca",
                "junk.pem",
            ],
            "junk.pem` (`--tls-client-ca`) holds no PEM certificate",
        ),
    ];
    for (args, needle) in cases {
        let (code, err) = fails_to_start(d, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
        assert!(!err.contains("listening"), "{err}");
    }
    let (code, err) = fails_to_start(d, &["--tls-cert", "server.pem"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-key"), "{err}");
}

/// The shipped examples: Alertmanager's receiver passes `amtool
/// check-config`; the Kubernetes manifests and the Grafana contact point
/// are YAML with the probes, hooks and HMAC serve expects.
#[test]
fn serve_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let amtool = ["/usr/bin/amtool", "/usr/local/bin/amtool"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    match amtool {
        Some(amtool) => {
            let out = Command::new(amtool)
                .arg("check-config")
                .arg(root.join("serve/alertmanager.yml"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => eprintln!("skipped amtool check-config: no amtool"),
    }
    let k8s = std::fs::read_to_string(root.join("kubernetes/irctl-serve.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = k8s
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("{e}\n{d}")))
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Certificate",
            "Deployment",
            "Service"
        ]
    );
    let pod = &docs[2]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(args.contains(&"--state-dir=/state"), "{args:?}");
    assert!(
        args.contains(&"--tls-cert=/etc/irctl/tls/tls.crt"),
        "{args:?}"
    );
    let grafana = std::fs::read_to_string(root.join("grafana/contact-point.yaml")).unwrap();
    let g: serde_json::Value = serde_saphyr::from_str(&grafana).unwrap();
    let settings = &g["contactPoints"][0]["receivers"][0]["settings"];
    assert_eq!(g["contactPoints"][0]["receivers"][0]["type"], "webhook");
    assert!(
        settings["url"]
            .as_str()
            .unwrap()
            .ends_with("/hooks/grafana")
    );
    assert_eq!(
        settings["hmacConfig"]["header"],
        "X-Grafana-Alerting-Signature"
    );
}
