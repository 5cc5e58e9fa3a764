//! Step processes are contained: a step that daemonizes (a new session, a
//! new process group, a double fork) does not outlive its step or hold its
//! output, a SIGKILL of irctl takes the step leader with it, and the lock
//! of a killed run outlives it while its processes live. Each containment
//! test runs with the machine's cgroups (where irctl may create them) and
//! again without (`IRCTL_NO_CGROUP`), the marker-and-subreaper fallback.

mod common;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Test, timeline_events, unindent};
use wait::wait_until;

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(steps)
    )
}

/// Whether `pid` runs (a zombie does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s[s.rfind(')')? + 1..]
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Kills the processes the test started through irctl if an assertion
/// fails first, so a failing test leaves no `sleep 300` behind.
struct Reaper(Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn read_pid(dir: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn finished(events: &[serde_json::Value], step: &str) -> serde_json::Value {
    events
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}: {events:?}"))
        .clone()
}

/// A script that prints, then starts a daemon by `how` (which must write the
/// daemon's pid to `d.pid` and keep the step's stdout), then `then`.
fn daemonizing(how: &str, then: &str, timeout: &str) -> String {
    playbook(&format!(
        r#"
        steps:
          - id: start
            timeout: {timeout}
            shell: |
              echo before-daemon
              {how}
              while [ ! -s d.pid ]; do sleep 0.05; done
              {then}
        "#
    ))
}

const WAYS: [(&str, &str); 4] = [
    ("setsid", "setsid sh -c 'echo $$ > d.pid; exec sleep 300' &"),
    (
        "double fork",
        "( sh -c 'echo $$ > d.pid; exec sleep 300' & ) ; true",
    ),
    ("nohup", "nohup sh -c 'echo $$ > d.pid; exec sleep 300' &"),
    (
        "cleared environment in a new session",
        "setsid env -i /bin/sh -c 'echo $$ > d.pid; exec sleep 300' &",
    ),
];

fn check_daemon_gone(yaml: &str, status: i32, step_status: &str, no_cgroup: bool, what: &str) {
    let mut test = Test::new()
        .playbook("t.yaml", yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(status);
    if no_cgroup {
        test = test.env("IRCTL_NO_CGROUP", "1");
    }
    let started = Instant::now();
    let out = test.run();
    let dir = out.tempdir.path();
    let daemon = read_pid(dir, "d.pid").unwrap_or_else(|| panic!("{what}: no daemon pid"));
    let _reaper = Reaper(vec![daemon]);
    // Generous: the bound is that the run ends at all, not how fast.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{what}: the run took {:?}",
        started.elapsed()
    );
    assert!(
        !running(daemon),
        "{what}: the daemon {daemon} outlived irctl"
    );
    let ev = timeline_events(dir);
    let step = finished(&ev, "start");
    assert_eq!(step["status"], step_status, "{what}: {step}");
    assert!(
        step["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("before-daemon")),
        "{what}: the output before daemonizing was lost: {step}"
    );
}

#[test]
fn a_daemon_started_by_a_step_that_exits_is_ended_and_its_output_kept() {
    for no_cgroup in [false, true] {
        for (name, how) in WAYS {
            let what = format!("{name} (no cgroup: {no_cgroup})");
            check_daemon_gone(
                &daemonizing(how, "echo after", "30s"),
                0,
                "succeeded",
                no_cgroup,
                &what,
            );
        }
    }
}

#[test]
fn a_daemon_started_by_a_step_that_times_out_is_ended_and_its_output_kept() {
    for no_cgroup in [false, true] {
        for (name, how) in WAYS {
            let what = format!("{name} (no cgroup: {no_cgroup})");
            check_daemon_gone(
                &daemonizing(how, "sleep 300", "2s"),
                1,
                "timed_out",
                no_cgroup,
                &what,
            );
        }
    }
}

#[test]
fn a_daemon_in_its_own_process_group_is_ended() {
    // Job control puts the background job in a process group of its own.
    let yaml = daemonizing(
        "set -m; sh -c 'echo $$ > d.pid; exec sleep 300' &",
        "exit 0",
        "30s",
    );
    for no_cgroup in [false, true] {
        check_daemon_gone(&yaml, 0, "succeeded", no_cgroup, "setpgid");
    }
}

fn irctl(dir: &Path, no_cgroup: bool) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"));
    cmd.current_dir(dir)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"]);
    if no_cgroup {
        cmd.env("IRCTL_NO_CGROUP", "1");
    }
    cmd
}

#[test]
fn a_killed_irctl_takes_its_step_leader_along_and_its_lock_outlives_it_while_a_daemon_lives() {
    for no_cgroup in [false, true] {
        let test = Test::new().playbook(
            "t.yaml",
            &playbook(
                r#"
                steps:
                  - id: hold
                    shell: |
                      if [ -f second ]; then echo second-run; exit 0; fi
                      echo $$ > leader.pid
                      setsid sh -c 'echo $$ > d.pid; exec sleep 300' &
                      sleep 300
                "#,
            ),
        );
        let dir = test.path().to_path_buf();
        let mut first = irctl(&dir, no_cgroup)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let (leader, daemon) = wait_until(
            start + Duration::from_secs(30),
            Duration::from_millis(50),
            "the step never started its daemon",
            || Some((read_pid(&dir, "leader.pid")?, read_pid(&dir, "d.pid")?)),
        );
        let _reaper = Reaper(vec![leader, daemon]);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert_eq!(first.wait().unwrap().code(), None, "irctl was killed");
        wait_until(
            Instant::now() + Duration::from_secs(20),
            Duration::from_millis(50),
            "the step leader outlived the killed irctl",
            || (!running(leader)).then_some(()),
        );
        assert!(
            running(daemon),
            "the daemon is what this test leaves behind"
        );

        // The next run of the same playbook for the same incident refuses.
        std::fs::write(dir.join("second"), "").unwrap();
        let second = irctl(&dir, no_cgroup).output().unwrap();
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("pid {daemon} (`sleep 300`)")),
            "{stderr}"
        );
        assert!(stderr.contains("was killed"), "{stderr}");
        assert_eq!(
            std::fs::read_dir(dir.join("state/runs")).unwrap().count(),
            1,
            "the refused run started nothing"
        );

        // Once the daemon is gone, the stale lock is taken over.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let third = irctl(&dir, no_cgroup).output().unwrap();
        let stderr = String::from_utf8_lossy(&third.stderr);
        assert_eq!(third.status.code(), Some(0), "{stderr}");
        drop(test);
    }
}

#[test]
fn a_symlink_at_a_lock_path_is_refused_and_never_written_through() {
    let yaml = playbook(
        r#"
        steps:
          - id: a
            shell: echo ran
        "#,
    );
    let out = Test::new()
        .playbook("t.yaml", &yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .run();
    let dir = out.tempdir.path();
    // The run's own lock (episode locks live beside it).
    let lock = std::fs::read_dir(dir.join("state/locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("t-"))
        .unwrap();
    std::fs::remove_file(&lock).unwrap();
    std::fs::write(dir.join("precious"), "keep me").unwrap();
    std::os::unix::fs::symlink(dir.join("precious"), &lock).unwrap();
    let again = irctl(dir, false).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("precious")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("state/runs")).unwrap().count(),
        1
    );

    // A link in place of the locks directory is refused the same way.
    std::fs::remove_file(&lock).unwrap();
    std::fs::rename(dir.join("state/locks"), dir.join("elsewhere")).unwrap();
    let before = std::fs::read_dir(dir.join("elsewhere")).unwrap().count();
    std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("state/locks")).unwrap();
    let again = irctl(dir, false).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.join("elsewhere")).unwrap().count(),
        before,
        "nothing new is written through the link"
    );
}
