//! A disk that fills, through the real binary. `RLIMIT_FSIZE` (a file-size
//! limit, set on the child alone: no root, no mount) makes every write past
//! it fail with `EFBIG`, as a full disk fails with `ENOSPC`; where a user
//! namespace can mount a tiny tmpfs, the run also meets a real `ENOSPC`.
//! Each time: one clear error naming the file, exit 74, nothing already
//! written lost, no step started blind, and the run resumes and verifies
//! once there is room again. Serve answers 503 with `Retry-After` while its
//! store cannot write, `/readyz` says so, and both recover by themselves.

mod common;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{irctl_in, unindent};
use serve::{Server, alertmanager, bearer};
use wait::wait_until;

/// The exit code of a record that could not be written (README, "Exit codes").
const NO_ROOM: i32 = 74;

/// What a limited child printed, and how it ended.
struct Ran {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with writes past `fsize` bytes failing (`EFBIG`; irctl
/// survives the `SIGXFSZ` that comes first), bounded by a minute.
fn with_file_limit(mut cmd: Command, fsize: u64) -> Ran {
    // SAFETY: only setrlimit, which is async-signal-safe, runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let limit = nix::libc::rlimit {
                rlim_cur: fsize,
                rlim_max: fsize,
            };
            if nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    finish(cmd)
}

/// Runs `cmd` to its end, bounded by a minute.
fn finish(mut cmd: Command) -> Ran {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start irctl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait for irctl");
    Ran {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `irctl ARGS` in `dir` with `dir/state` as the state directory.
fn irctl(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = irctl_in(dir);
    cmd.env("IRCTL_STATE_DIR", dir.join("state"))
        .env("IRCTL_ACTOR", "alice")
        .args(args);
    cmd
}

fn playbook(dir: &Path, steps: &str) {
    let books = dir.join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("t.yaml"),
        format!(
            "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\nsteps:\n{}",
            unindent(steps)
        ),
    )
    .unwrap();
}

fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn timeline(dir: &Path, id: &str) -> String {
    std::fs::read_to_string(dir.join("state/runs").join(id).join("timeline.jsonl")).unwrap()
}

/// The incident run `id` was for, as `irctl runs` shows it.
fn incident_of(dir: &Path, id: &str) -> String {
    let listed = finish(irctl(dir, &["runs", "--format", "json"]));
    let runs: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    runs.as_array()
        .and_then(|r| r.iter().find(|r| r["run_id"] == id))
        .and_then(|r| r["incident_id"].as_str())
        .unwrap_or_else(|| panic!("no run {id} in {}", listed.stdout))
        .to_string()
}

/// A run whose first step's output does not fit stops before the next
/// step; after the limit is gone, `resume` runs what was not recorded and
/// the whole record verifies.
const STEPS: &str = r#"
      - id: big
        shell: head -c 400000 /dev/zero | tr '\0' x; touch big-ran
      - id: next
        needs: [big]
        shell: touch next-ran
    "#;

#[test]
fn a_run_that_cannot_write_its_record_stops_then_resumes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    playbook(dir, STEPS);
    let ran = with_file_limit(irctl(dir, &["run", "--label", "app=t"]), 128 * 1024);
    assert_eq!(ran.status, Some(NO_ROOM), "{}\n{}", ran.stdout, ran.stderr);
    let id = run_id(&ran.stdout);
    let path = dir.join("state/runs").join(&id).join("timeline.jsonl");
    // One error, naming the file, the reason, and the way on.
    let errors: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", ran.stderr);
    assert!(
        errors[0].contains(&format!("cannot write timeline `{}`", path.display()))
            && errors[0].contains("File too large")
            && errors[0].contains(&format!("irctl resume {id}")),
        "{}",
        ran.stderr
    );
    assert!(dir.join("big-ran").exists());
    assert!(!dir.join("next-ran").exists(), "a step started blind");
    // A clean prefix: every line whole, the chain intact, only incomplete.
    let text = timeline(dir, &id);
    assert!(text.ends_with('\n'));
    assert!(text.contains("\"type\":\"step_started\""));
    assert!(!text.contains("\"type\":\"step_finished\""));
    let verify = finish(irctl(dir, &["timeline", "verify", &id]));
    assert_eq!(verify.status, Some(1), "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("incomplete"), "{}", verify.stdout);
    assert!(!verify.stderr.contains("torn"), "{}", verify.stderr);

    // Room again: the same run goes on, in the same timeline.
    let resumed = finish(irctl(dir, &["resume", &id]));
    assert_eq!(
        resumed.status,
        Some(0),
        "{}\n{}",
        resumed.stdout,
        resumed.stderr
    );
    assert!(dir.join("next-ran").exists());
    let stopped = text;
    let text = timeline(dir, &id);
    assert!(text.starts_with(&stopped), "what was written changed");
    assert!(text[stopped.len()..].starts_with("{\"ts\""));
    assert!(text.contains("\"type\":\"run_resumed\""));
    assert!(text.contains("\"status\":\"succeeded\""));
    let verify = finish(irctl(dir, &["timeline", "verify", &id]));
    assert_eq!(verify.status, Some(0), "{}{}", verify.stdout, verify.stderr);
}

#[test]
fn a_run_that_cannot_even_start_its_record_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    playbook(dir, STEPS);
    // Not even `run_started` fits.
    let ran = with_file_limit(irctl(dir, &["run", "--label", "app=t"]), 64);
    assert_eq!(ran.status, Some(NO_ROOM), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("File too large"), "{}", ran.stderr);
    assert!(!dir.join("big-ran").exists(), "a step ran without a record");
}

#[test]
fn huge_step_output_is_capped_per_step_and_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // 9 steps × (1 MiB kept of stdout + 1 MiB of stderr) pass the run's 16 MiB.
    let mut steps = String::from(
        "  - id: flood\n    shell: head -c 5000000 /dev/zero | tr '\\0' x; echo; echo done\n",
    );
    for i in 0..9 {
        steps.push_str(&format!(
            "  - id: s{i}\n    shell: head -c 1100000 /dev/zero | tr '\\0' o; head -c 1100000 /dev/zero | tr '\\0' e >&2\n"
        ));
    }
    steps.push_str("  - id: last\n    needs: [s0, s1, s2, s3, s4, s5, s6, s7, s8, flood]\n    shell: echo the end\n");
    let books = dir.join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("t.yaml"),
        format!(
            "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\nsteps:\n{steps}"
        ),
    )
    .unwrap();
    let ran = finish(irctl(dir, &["run", "--label", "app=t"]));
    assert_eq!(ran.status, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let id = run_id(&ran.stdout);
    let text = timeline(dir, &id);
    assert!(
        text.len() < 17 * 1024 * 1024 + 200 * 1024,
        "{} bytes",
        text.len()
    );
    let finished: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "step_finished")
        .collect();
    let of = |step: &str| {
        finished
            .iter()
            .find(|e| e["step"] == step)
            .unwrap_or_else(|| panic!("no step_finished for {step}"))
            .clone()
    };
    let flood = of("flood")["stdout"].as_str().unwrap().to_string();
    assert!(flood.len() <= 1024 * 1024 + 100);
    assert!(
        flood.ends_with("[irctl: output truncated at 1 MiB]"),
        "{}",
        &flood[flood.len() - 80..]
    );
    let budget_marks = finished
        .iter()
        .flat_map(|e| [e["stdout"].as_str(), e["stderr"].as_str()])
        .flatten()
        .filter(|s| {
            s.ends_with("[irctl: output truncated: the run's 16 MiB output budget is spent]")
        })
        .count();
    assert!(budget_marks >= 2, "the run's budget was never applied");
    assert_eq!(of("last")["stdout"], "the end\n");
    let verify = finish(irctl(dir, &["timeline", "verify", &id]));
    assert_eq!(verify.status, Some(0), "{}{}", verify.stdout, verify.stderr);
}

#[test]
fn a_note_that_does_not_fit_keeps_the_log_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    playbook(dir, "  - id: a\n    shell: echo hi\n");
    let ran = finish(irctl(dir, &["run", "--label", "app=t"]));
    assert_eq!(ran.status, Some(0), "{}", ran.stderr);
    let incident = incident_of(dir, &run_id(&ran.stdout));
    let first = finish(irctl(dir, &["note", "--incident", &incident, "first note"]));
    assert_eq!(first.status, Some(0), "{}", first.stderr);
    let log = std::fs::read_dir(dir.join("state/incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("timeline.jsonl");
    let before = std::fs::read(&log).unwrap();
    let long = "x".repeat(64 * 1024);
    let ran = with_file_limit(
        irctl(dir, &["note", "--incident", &incident, &long]),
        before.len() as u64 + 1024,
    );
    assert_eq!(ran.status, Some(NO_ROOM), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains(&format!("cannot write timeline `{}`", log.display()))
            && ran.stderr.contains("File too large"),
        "{}",
        ran.stderr
    );
    // Nothing half-written is left behind: the log is as it was.
    assert_eq!(std::fs::read(&log).unwrap(), before);
    let second = finish(irctl(
        dir,
        &["note", "--incident", &incident, "second note"],
    ));
    assert_eq!(second.status, Some(0), "{}", second.stderr);
}

#[test]
fn a_postmortem_that_does_not_fit_keeps_the_file_it_would_replace() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    playbook(dir, "  - id: a\n    shell: echo hi\n");
    let ran = finish(irctl(dir, &["run", "--label", "app=t"]));
    assert_eq!(ran.status, Some(0), "{}", ran.stderr);
    let id = run_id(&ran.stdout);
    let out = dir.join("pm.md");
    let old = "an earlier draft, edited by hand\n";
    std::fs::write(&out, old).unwrap();
    let incident = incident_of(dir, &id);
    let full = with_file_limit(
        irctl(
            dir,
            &["postmortem", "--incident", &incident, "--output", "pm.md"],
        ),
        100,
    );
    assert_eq!(full.status, Some(NO_ROOM), "{}", full.stderr);
    assert!(
        full.stderr.contains("cannot write `pm.md`") && full.stderr.contains("File too large"),
        "{}",
        full.stderr
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), old);
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pm.md"))
        .collect();
    assert_eq!(names, ["pm.md"], "a partial file was left beside it");
}

/// Sets serve's file-size limit from outside (`prlimit(2)`, as
/// `prlimit --pid PID --fsize=N` does): `None` lifts it.
fn set_file_limit(pid: i32, fsize: Option<u64>) {
    let n = fsize.unwrap_or(nix::libc::RLIM_INFINITY);
    let limit = nix::libc::rlimit {
        rlim_cur: n,
        rlim_max: nix::libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall on a child this test started, with valid pointers.
    let rc =
        unsafe { nix::libc::prlimit(pid, nix::libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

const TOKEN: &str = "t0ken-disk-full-0001";

#[test]
fn serve_answers_503_while_its_store_cannot_write_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let books = dir.join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("a.yaml"),
        "version: 1\nname: a\ntitle: A\nauto: true\nmatch:\n  labels: ['alertname=\"A\"']\nsteps:\n  - id: a\n    shell: \"true\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("secrets.env"),
        format!("SERVE_BEARER_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let server = Server::start(
        dir,
        &["--playbooks", "playbooks", "--secrets-file", "secrets.env"],
        &[],
    );
    assert_eq!(server.get("/readyz", &[]).status, 200);
    // The disk "fills": nothing more of the store's files may grow.
    set_file_limit(server.pid(), Some(1));
    let body = alertmanager("A", "firing", "2024-01-01T10:00:00Z");
    let refused = server.post("/hooks/alertmanager", &bearer(TOKEN), body.as_bytes());
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("not writable"), "{}", ready.body);
    // Space returns: ready again and accepting, without a restart.
    set_file_limit(server.pid(), None);
    wait_until(
        Instant::now() + Duration::from_secs(20),
        Duration::from_millis(100),
        "serve never became ready again",
        || (server.get("/readyz", &[]).status == 200).then_some(()),
    );
    let accepted = server.post("/hooks/alertmanager", &bearer(TOKEN), body.as_bytes());
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(100),
        "the accepted delivery's run never finished",
        || {
            serve::deliveries(&server, TOKEN)
                .iter()
                .any(|d| d["state"] == "done" && d["outcome"] == "succeeded")
                .then_some(())
        },
    );
    assert!(
        server.stderr().contains("cannot store a delivery"),
        "{}",
        server.stderr()
    );
}

/// A real `ENOSPC`: a 256 KiB tmpfs as the state directory, mounted in a
/// user namespace of the run's own (skipped where that is not allowed),
/// then grown, as an operator frees space.
#[test]
fn a_real_full_disk_stops_the_run_and_resume_finishes_it_once_space_returns() {
    let probe = Command::new("unshare")
        .args(["-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        eprintln!(
            "SKIPPED: cannot mount a tmpfs in a user namespace here (`unshare -Urm`: {why}); the RLIMIT_FSIZE tests cover the same paths with EFBIG"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    playbook(dir, STEPS);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let exe = env!("CARGO_BIN_EXE_irctl");
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=256k tmpfs state || exit 90
"{exe}" run --label app=t > run.out 2> run.err; echo "run=$?"
id=$(sed -n 's/^run \([^ ]*\).*/\1/p' run.out | head -n 1)
cp state/runs/"$id"/timeline.jsonl stopped.jsonl
mount -o remount,size=8m state || exit 91
"{exe}" resume "$id" > resume.out 2> resume.err; echo "resume=$?"
"{exe}" timeline verify "$id" > verify.out 2> verify.err; echo "verify=$?"
cp state/runs/"$id"/timeline.jsonl resumed.jsonl
echo "id=$id"
"#
    );
    let cmd = {
        let mut c = Command::new("unshare");
        c.current_dir(dir)
            .env("IRCTL_STATE_DIR", dir.join("state"))
            .env("IRCTL_ACTOR", "alice")
            .env("XDG_CACHE_HOME", dir.join(".cache"))
            .args(["-Urm", "sh", "-c", &script]);
        c
    };
    let ran = finish(cmd);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let context = format!(
        "{}\n{}\nrun: {}{}\nresume: {}{}\nverify: {}",
        ran.stdout,
        ran.stderr,
        read("run.out"),
        read("run.err"),
        read("resume.out"),
        read("resume.err"),
        read("verify.out")
    );
    assert!(ran.stdout.contains(&format!("run={NO_ROOM}")), "{context}");
    assert!(
        read("run.err").contains("No space left on device"),
        "{context}"
    );
    assert!(
        read("run.err").contains("cannot write timeline"),
        "{context}"
    );
    assert!(ran.stdout.contains("resume=0"), "{context}");
    assert!(ran.stdout.contains("verify=0"), "{context}");
    let stopped = read("stopped.jsonl");
    assert!(stopped.ends_with('\n'), "{context}");
    assert!(read("resumed.jsonl").starts_with(&stopped), "{context}");
    assert!(dir.join("next-ran").exists(), "{context}");
}
