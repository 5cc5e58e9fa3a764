//! Actions and responses the judge's tests share, so each rule's test
//! states only what it is about.

use std::time::Duration;

use crate::engine::Attempt;
use crate::engine::action::Action;
use crate::engine::context::StepStatus;
use crate::engine::http::{Body, Request};
use crate::engine::notify::{Notification, Post, Service};
use crate::engine::response::{
    Captured, Exit, HttpReply, ProcessRun, Response, StepError, Stopped,
};
use crate::engine::shell::{Invocation, Program};
use crate::secret::Redactor;

pub(super) fn shell() -> Action {
    Action::Process(Invocation {
        program: Program::Shell("true".into()),
        env: Vec::new(),
        cwd: None,
        interpreter: None,
    })
}

pub(super) fn request(expect: &[u16]) -> Request {
    Request {
        method: "POST".into(),
        url: "https://api.example:8443/drain".into(),
        headers: Vec::new(),
        body: Some(Body::Text("{}".into())),
        expect: expect.to_vec(),
        insecure: false,
        max_redirects: 5,
    }
}

pub(super) fn post(service: Service) -> Action {
    Action::Notify(Notification::Post(Post {
        service,
        request: Request {
            url: "https://hooks.example/T1".into(),
            ..request(&[])
        },
        text: Some("hi".into()),
    }))
}

/// The judge with no secrets to mask.
pub(super) fn judge(action: &Action, response: Response) -> Attempt {
    super::judge(action, response, &Redactor::default())
}

pub(super) fn exited(code: Option<i32>, signal: Option<i32>, stdout: Captured) -> Response {
    Response::Process(ProcessRun {
        end: Ok(Exit { code, signal }),
        stdout,
        stderr: Captured::text("warn\n"),
        duration: Duration::from_millis(12),
    })
}

pub(super) fn stopped(error: StepError, exit: Option<Exit>) -> Response {
    Response::Process(ProcessRun {
        end: Err(Stopped { error, exit }),
        stdout: Captured::text("partial\n"),
        stderr: Captured::default(),
        duration: Duration::from_millis(5),
    })
}

pub(super) fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response::Http(HttpReply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
        truncated: false,
        duration: Duration::from_millis(30),
    })
}

pub(super) fn failed(error: StepError) -> Response {
    Response::failed(error, Duration::from_millis(40))
}

/// Status, message and retryable, the parts every rule decides.
pub(super) fn verdict(a: &Attempt) -> (StepStatus, Option<&str>, bool) {
    (a.status, a.error.as_deref(), a.retryable)
}
