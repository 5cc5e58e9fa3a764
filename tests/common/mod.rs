//! The one way integration tests run `irctl`: a [`Test`] builder in the
//! style of casey/just's `tests/test.rs`.
//!
//! A test describes a temporary directory (playbooks and other files), the
//! arguments, and what it expects (exit status, exact stdout/stderr or parts
//! of them); [`Test::run`] runs the real binary there and checks everything,
//! printing the whole output on a mismatch.
//!
//! ```ignore
//! Test::new()
//!     .playbook("disk.yaml", "version: 1\n...")
//!     .args(["validate", "--format", "json"])
//!     .status(1)
//!     .stderr_contains("unknown-need")
//!     .run();
//! ```

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

/// A safety net, not an assertion: a hung binary fails the test instead of the CI job.
const HANG_LIMIT: Duration = Duration::from_secs(120);

/// What a stream must look like.
enum Expect {
    Exact(String),
    Contains(Vec<String>),
}

/// A test case: files in a temp dir, a command line, and expectations.
// A builder whose `.run()` was forgotten checks nothing; under
// `-D warnings` that is a compile error instead of a silent pass.
#[must_use = "a `Test` checks nothing until `.run()`"]
pub struct Test {
    tempdir: TempDir,
    current_dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    status: i32,
    stdout: Option<Expect>,
    stderr: Option<Expect>,
}

/// What a finished run produced; the temp dir lives as long as this does.
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status.
    pub status: i32,
    /// The directory the test ran in.
    pub tempdir: TempDir,
}

impl Output {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    /// An empty temp dir; `irctl` runs in it with no arguments yet.
    pub fn new() -> Self {
        let tempdir = tempfile::Builder::new()
            .prefix("irctl-test")
            .tempdir()
            .expect("create temp dir");
        Test {
            tempdir,
            current_dir: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            status: 0,
            stdout: None,
            stderr: None,
        }
    }

    /// The temp dir's path, for tests that prepare unusual files themselves.
    pub fn path(&self) -> &Path {
        self.tempdir.path()
    }

    /// Writes `playbooks/<name>`.
    pub fn playbook(self, name: &str, yaml: &str) -> Self {
        self.file(&format!("playbooks/{name}"), yaml)
    }

    /// Writes `path` (relative to the temp dir), creating parent directories.
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>) -> Self {
        let full = self.inside(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&full, contents).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
        self
    }

    /// Creates the directory `path` (relative to the temp dir).
    pub fn dir(self, path: &str) -> Self {
        fs::create_dir_all(self.inside(path)).expect("create dir");
        self
    }

    /// `path` in the temp dir; an absolute path would silently write outside it.
    fn inside(&self, path: &str) -> PathBuf {
        assert!(
            Path::new(path).is_relative(),
            "test files live in the temp dir: `{path}` is absolute"
        );
        self.tempdir.path().join(path)
    }

    /// Runs in `dir` (relative to the temp dir) instead of the temp dir itself.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = dir.into();
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `input` on stdin.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// The expected exit status (0 unless set).
    pub fn status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    /// Stdout must be exactly `text`.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = Some(Expect::Exact(text.to_string()));
        self
    }

    /// Stderr must be exactly `text`.
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr = Some(Expect::Exact(text.to_string()));
        self
    }

    /// Stdout must contain `text` (repeatable).
    pub fn stdout_contains(mut self, text: &str) -> Self {
        push_contains(&mut self.stdout, text);
        self
    }

    /// Stderr must contain `text` (repeatable).
    pub fn stderr_contains(mut self, text: &str) -> Self {
        push_contains(&mut self.stderr, text);
        self
    }

    /// Runs `irctl` and checks the expectations; panics with the full output on a mismatch.
    pub fn run(self) -> Output {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_irctl"));
        cmd.current_dir(self.tempdir.path().join(&self.current_dir))
            .args(&self.args)
            .timeout(HANG_LIMIT);
        // The developer's environment must not change what the tests see.
        #[allow(clippy::disallowed_methods)] // tests inspect the real environment, not irctl's view
        let inherited = std::env::vars_os();
        for (key, _) in inherited {
            if key.to_string_lossy().starts_with("IRCTL_") {
                cmd.env_remove(&key);
            }
        }
        // Each test gets its own cache, so no test sees another's (or the
        // developer's) cached playbook summaries or Git clones.
        cmd.env_remove("NO_COLOR")
            .env("COLUMNS", "100")
            .env("XDG_CACHE_HOME", self.tempdir.path().join(".cache"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(input) = &self.stdin {
            cmd.write_stdin(input.clone());
        }
        let out = cmd.output().expect("run irctl");
        let output = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            status: out.status.code().unwrap_or(-1),
            tempdir: self.tempdir,
        };
        let context = || {
            format!(
                "irctl {:?}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
                self.args, output.status, output.stdout, output.stderr
            )
        };
        assert_eq!(
            output.status,
            self.status,
            "unexpected exit status\n{}",
            context()
        );
        check("stdout", &self.stdout, &output.stdout, &context);
        check("stderr", &self.stderr, &output.stderr, &context);
        output
    }
}

fn push_contains(slot: &mut Option<Expect>, text: &str) {
    match slot {
        Some(Expect::Contains(parts)) => parts.push(text.to_string()),
        _ => *slot = Some(Expect::Contains(vec![text.to_string()])),
    }
}

fn check(name: &str, expect: &Option<Expect>, actual: &str, context: &dyn Fn() -> String) {
    match expect {
        None => {}
        Some(Expect::Exact(text)) => {
            assert_eq!(actual, text, "unexpected {name}\n{}", context());
        }
        Some(Expect::Contains(parts)) => {
            for part in parts {
                assert!(
                    actual.contains(part.as_str()),
                    "{name} does not contain {part:?}\n{}",
                    context()
                );
            }
        }
    }
}

/// Removes the leading newline and the common indentation, so fixtures can be
/// indented with the test code: `unindent("\n    a:\n      b\n")` is `"a:\n  b\n"`.
pub fn unindent(text: &str) -> String {
    let text = text
        .strip_prefix('\n')
        .unwrap_or(text)
        .trim_end_matches(' ');
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start_matches(' ')
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// The text of the only run's timeline under `dir/state`, if it exists yet.
pub fn try_timeline_text(dir: &Path) -> Option<String> {
    let run = fs::read_dir(dir.join("state/runs"))
        .ok()?
        .next()?
        .ok()?
        .path();
    fs::read_to_string(run.join("timeline.jsonl")).ok()
}

/// The text of the only run's timeline under `dir/state`.
pub fn timeline_text(dir: &Path) -> String {
    try_timeline_text(dir).expect("one run with a timeline")
}

/// The events of the only run's timeline under `dir/state`, each parsed.
pub fn timeline_events(dir: &Path) -> Vec<serde_json::Value> {
    timeline_text(dir)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

/// What `irctl ARGS` (run in `dir` with `env`) shows on a real terminal —
/// `script` gives it one — when a person types `answer`; `None`, after
/// saying so, where `script` (util-linux) is not installed.
pub fn on_terminal(dir: &Path, args: &str, env: &[(&str, &str)], answer: &[u8]) -> Option<String> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `script` (util-linux) is not installed");
        return None;
    }
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_irctl"));
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(answer);
            }
            child.wait_with_output()
        })
        .expect("run irctl under script");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `irctl` to run in `dir` as a child the test drives itself (to signal
/// it, or to wait for it beside another process): without the developer's
/// `IRCTL_*` variables, with its own cache, and stdin not a terminal.
pub fn irctl_in(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"));
    #[allow(clippy::disallowed_methods)] // tests inspect the real environment, not irctl's view
    let inherited = std::env::vars_os();
    for (key, _) in inherited {
        if key.to_string_lossy().starts_with("IRCTL_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .stdin(std::process::Stdio::null());
    cmd
}
