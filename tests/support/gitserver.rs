//! Real Git for tests: repositories built with the `git` CLI in temp dirs,
//! served on 127.0.0.1 by `git daemon` and by smart HTTP (`git http-backend`
//! as a CGI behind a small axum server), every server stopped on drop.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::wait::wait_until;

/// The environment every `git` the tests run gets: no user or system
/// config, fixed identities, so the developer's setup cannot leak in.
pub fn git_env(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Author")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_TERMINAL_PROMPT", "0");
}

/// Runs `git args` in `dir`; panics with git's output when it fails.
pub fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    git_env(&mut cmd, home);
    let out = cmd.output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work repository and the bare repository it pushes to (the "server").
pub struct Repo {
    /// The temp dir holding everything.
    pub root: tempfile::TempDir,
}

impl Repo {
    /// An empty work repo on `main`, and an empty bare `srv/playbooks.git`.
    pub fn new() -> Repo {
        let root = tempfile::Builder::new()
            .prefix("irctl-git")
            .tempdir()
            .expect("temp dir");
        let repo = Repo { root };
        std::fs::create_dir_all(repo.home()).expect("home");
        std::fs::create_dir_all(repo.work()).expect("work");
        std::fs::create_dir_all(repo.served()).expect("srv");
        repo.git(&["init", "-q", "-b", "main"]);
        git(
            &repo.served(),
            &repo.home(),
            &["init", "-q", "--bare", "-b", "main"],
        );
        repo
    }

    /// HOME for git and irctl.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The working repository.
    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// The directory the servers export.
    pub fn server_root(&self) -> PathBuf {
        self.root.path().join("srv")
    }

    /// The served bare repository.
    pub fn served(&self) -> PathBuf {
        self.server_root().join("playbooks.git")
    }

    /// A fresh cache directory for irctl.
    pub fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// The served repository as a `file://` URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.served().display())
    }

    /// Runs git in the work repository.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.work(), &self.home(), args)
    }

    /// Writes a file in the work repository.
    pub fn write(&self, path: &str, text: &str) -> &Self {
        let full = self.work().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(&full, text).expect("write");
        self
    }

    /// Removes a file from the work repository.
    pub fn remove(&self, path: &str) -> &Self {
        self.git(&["rm", "-q", path]);
        self
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Pushes every branch and tag to the served repository, forcing.
    pub fn push(&self) {
        let srv = self.served();
        let srv = srv.to_str().expect("utf-8 path");
        self.git(&["push", "-q", "--force", srv, "refs/heads/*:refs/heads/*"]);
        self.git(&["push", "-q", "--force", srv, "refs/tags/*:refs/tags/*"]);
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_listening(addr: SocketAddr, what: &str) {
    wait_until(
        Instant::now() + Duration::from_secs(20),
        Duration::from_millis(20),
        what,
        || TcpStream::connect(addr).ok(),
    );
}

/// `git daemon` exporting a repo's server root on 127.0.0.1.
///
/// `git daemon` is only a launcher that runs `git-daemon` as its child, and
/// `git-daemon` forks once per connection, so killing the child we spawned
/// would leave the listener behind. The daemon is therefore executed directly
/// from `git --exec-path`, in its own process group, and the whole group is
/// killed on drop.
pub struct Daemon {
    /// Its port.
    pub port: u16,
    child: Child,
}

impl Daemon {
    /// Starts the daemon and waits until it accepts connections.
    pub fn start(repo: &Repo) -> Daemon {
        let port = free_port();
        let mut cmd = Command::new(git_exec_path().join("git-daemon"));
        cmd.arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", repo.server_root().display()))
            .arg(repo.server_root())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        git_env(&mut cmd, &repo.home());
        let child = cmd.spawn().expect("start git-daemon");
        let daemon = Daemon { port, child };
        wait_listening(
            SocketAddr::from(([127, 0, 0, 1], port)),
            "git daemon listening",
        );
        daemon
    }

    /// The served repository's URL.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/playbooks.git", self.port)
    }

    /// The daemon's process group: its own pid.
    pub fn process_group(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The group id is the daemon's pid, which stays reserved until the
        // `wait` below reaps it, so the signal cannot reach a stranger.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.process_group()),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// Where git keeps its dashed helpers such as `git-daemon`.
fn git_exec_path() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("run git --exec-path");
    assert!(out.status.success(), "git --exec-path failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Live (not zombie) processes whose command line holds `needle`, as `pid cmdline`.
pub fn live_processes_with(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.to_string();
            if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ...`; comm may hold spaces and parentheses.
            let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (state != "Z" && cmdline.contains(needle)).then(|| format!("{pid} {cmdline}"))
        })
        .collect()
}

/// Dropping a [`Daemon`] ends every process it started: the listener and
/// the children it forked for connections.
#[test]
fn a_dropped_daemon_leaves_no_process_behind() {
    let repo = Repo::new();
    repo.write("a.txt", "a\n").commit("one");
    repo.push();
    let needle = format!("--base-path={}", repo.server_root().display());
    let daemon = Daemon::start(&repo);
    // A fetch makes the daemon fork a child for the connection.
    let heads = git(&repo.work(), &repo.home(), &["ls-remote", &daemon.url()]);
    assert!(heads.contains("refs/heads/main"), "{heads}");
    assert!(
        !live_processes_with(&needle).is_empty(),
        "the daemon is not found by its command line"
    );
    drop(daemon);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = live_processes_with(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "git-daemon still running after drop: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Smart HTTP: `git http-backend` as a CGI behind axum on 127.0.0.1,
/// optionally demanding Basic auth with a password.
pub struct HttpGit {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpGit {
    /// Serves `repo`'s server root on a free port.
    pub fn start(repo: &Repo, password: Option<&str>) -> HttpGit {
        Self::start_on(repo, password, 0)
    }

    /// Serves on `port` (0 picks one), so a test can restart a server on the same URL.
    pub fn start_on(repo: &Repo, password: Option<&str>, port: u16) -> HttpGit {
        let root = repo.server_root();
        let home = repo.home();
        let password = password.map(str::to_string);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                    let root = root.clone();
                    let home = home.clone();
                    let password = password.clone();
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(format!("{} {}", req.method(), req.uri()));
                    }
                    async move { cgi(req, &root, &home, password.as_deref()).await }
                });
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("http server started");
        HttpGit {
            addr,
            requests,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The requests served so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The served repository's URL.
    pub fn url(&self) -> String {
        format!("http://{}/playbooks.git", self.addr)
    }

    /// The URL with `user:password@` in it.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}/playbooks.git", self.addr)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> axum::response::Response {
    let mut resp = axum::response::Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(*k, *v);
    }
    resp.body(axum::body::Body::from(body))
        .expect("valid response")
}

/// Runs one request through `git http-backend` (RFC 3875 CGI).
async fn cgi(
    req: axum::extract::Request,
    root: &Path,
    home: &Path,
    password: Option<&str>,
) -> axum::response::Response {
    // Read everything from the request before the first await: a borrowed
    // request (its body is not `Sync`) cannot live across one.
    let (authorization, method, path, query, content_type, encoding) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (
            header("authorization"),
            req.method().to_string(),
            req.uri().path().to_string(),
            req.uri().query().unwrap_or("").to_string(),
            header("content-type"),
            header("content-encoding"),
        )
    };
    if let Some(password) = password {
        let ok = authorization
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|d| String::from_utf8(d).ok())
            .is_some_and(|up| up.split_once(':').is_some_and(|(_, p)| p == password));
        if !ok {
            return response(
                401,
                &[("WWW-Authenticate", "Basic realm=\"irctl-test\"")],
                b"auth required".to_vec(),
            );
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("QUERY_STRING", query)
        .env("PATH_INFO", path)
        .env("CONTENT_TYPE", content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", encoding)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let Ok(mut child) = cmd.spawn() else {
        return response(500, &[], b"cannot start git http-backend".to_vec());
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    }
    let Ok(out) = child.wait_with_output().await else {
        return response(500, &[], b"git http-backend failed".to_vec());
    };
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((head_end, body_start)) = split else {
        return response(502, &[], raw);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("status") {
                status = v
                    .split(' ')
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(500);
            } else {
                headers.push((k.to_string(), v.to_string()));
            }
        }
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    response(status, &headers, raw[body_start..].to_vec())
}
