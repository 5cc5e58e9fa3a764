//! A step's action with every template rendered: what an executor carries
//! out, what the judge reads (accepted statuses, the service), what
//! `--dry-run` shows and what the timeline records.
//!
//! The timeline form is the JSON this type serialises to (`shell`/`command`
//! with `cwd`, a request, or a notification with its `notify` target).
//! Within a run everything reads the typed fields; readers of a stored
//! timeline deserialise it back into this type.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer};

use super::http::{Body, Request};
use super::notify::{Notification, Post, Service};
use super::shell::{Invocation, Program};
use super::team::TeamPosts;
use crate::secret::Redactor;

/// A rendered action.
#[derive(Clone, Debug)]
pub enum Action {
    /// A `shell` script or a `command` argv.
    Process(Invocation),
    /// An `http` request.
    Http(Request),
    /// A `notify` notification.
    Notify(Notification),
}

impl Action {
    /// The request this action sends, if it sends one.
    pub fn request(&self) -> Option<&Request> {
        match self {
            Action::Http(req) | Action::Notify(Notification::Post(Post { request: req, .. })) => {
                Some(req)
            }
            _ => None,
        }
    }

    /// The rendered script, or the argv joined by spaces.
    pub fn command_line(&self) -> Option<String> {
        match self {
            Action::Process(inv) => Some(match &inv.program {
                Program::Shell(script) => script.clone(),
                Program::Command(argv) => argv.join(" "),
            }),
            _ => None,
        }
    }

    /// What people read of a notification: the message, the card's text,
    /// the summary, or the body.
    pub fn notification_text(&self) -> Option<String> {
        match self {
            Action::Notify(Notification::Console(text)) => Some(text.clone()),
            Action::Notify(Notification::Post(post)) => Some(post.text()),
            Action::Notify(Notification::Team(t)) => t.posts.first().map(Post::text),
            _ => None,
        }
    }

    /// One line for a timeline view: the command, or `[service ]METHOD url`.
    pub fn summary(&self) -> String {
        let (service, req) = match self {
            Action::Process(_) => return self.command_line().unwrap_or_default(),
            Action::Notify(Notification::Console(_)) => return "console".into(),
            Action::Notify(Notification::Team(t)) => return format!("team {}", t.summary()),
            Action::Http(req) => (None, req),
            Action::Notify(Notification::Post(post)) => (Some(post.service), &post.request),
        };
        match service {
            Some(service) => format!("{} {} {}", service.as_str(), req.method, req.url),
            None => format!("{} {}", req.method, req.url),
        }
        .trim()
        .to_string()
    }

    /// The same action with every secret value masked, for showing it.
    /// A body becomes the text sent, masked.
    pub fn redacted(&self, r: &Redactor) -> Action {
        match self {
            Action::Process(inv) => Action::Process(Invocation {
                program: match &inv.program {
                    Program::Shell(script) => Program::Shell(r.redact(script)),
                    Program::Command(argv) => {
                        Program::Command(argv.iter().map(|a| r.redact(a)).collect())
                    }
                },
                env: inv
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), r.redact(v)))
                    .collect(),
                cwd: inv.cwd.as_ref().map(|c| r.redact(c)),
                interpreter: inv.interpreter.clone(),
            }),
            Action::Http(req) => Action::Http(redacted_request(req, r)),
            Action::Notify(Notification::Console(text)) => {
                Action::Notify(Notification::Console(r.redact(text)))
            }
            Action::Notify(Notification::Post(post)) => {
                Action::Notify(Notification::Post(redacted_post(post, r)))
            }
            Action::Notify(Notification::Team(t)) => {
                Action::Notify(Notification::Team(TeamPosts {
                    team: t.team.clone(),
                    posts: t.posts.iter().map(|p| redacted_post(p, r)).collect(),
                }))
            }
        }
    }
}

/// `req` with every secret value masked; its body becomes the text sent, masked.
fn redacted_request(req: &Request, r: &Redactor) -> Request {
    Request {
        method: r.redact(&req.method),
        url: r.redact(&req.url),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (r.redact(k), r.redact(v)))
            .collect(),
        body: req
            .body
            .as_ref()
            .map(|b| Body::Text(r.redact(&b.to_string()))),
        ..req.clone()
    }
}

/// `post` with every secret value masked.
fn redacted_post(post: &Post, r: &Redactor) -> Post {
    Post {
        service: post.service,
        request: redacted_request(&post.request, r),
        text: post.text.as_ref().map(|t| r.redact(t)),
    }
}

/// A post as the timeline writes it: the request and its service.
struct PostEntry<'a>(&'a Post);

impl serde::Serialize for PostEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        request_entries(&mut map, &self.0.request)?;
        map.serialize_entry("notify", self.0.service.as_str())?;
        map.end()
    }
}

/// The timeline's form: `{"shell": …, "cwd": …}`, `{"command": [...]}`,
/// the request's `method`, `url`, `headers`, `body` (plus `notify` with the
/// service), or `{"notify": "console", "text": …}`.
impl serde::Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Action::Process(inv) => {
                match &inv.program {
                    Program::Shell(script) => map.serialize_entry("shell", script)?,
                    Program::Command(argv) => map.serialize_entry("command", argv)?,
                }
                if let Some(cwd) = &inv.cwd {
                    map.serialize_entry("cwd", cwd)?;
                }
                if let Some(argv) = &inv.interpreter {
                    map.serialize_entry("shell_interpreter", argv)?;
                }
            }
            Action::Http(req) => request_entries(&mut map, req)?,
            Action::Notify(Notification::Console(text)) => {
                map.serialize_entry("notify", "console")?;
                map.serialize_entry("text", text)?;
            }
            Action::Notify(Notification::Post(post)) => {
                request_entries(&mut map, &post.request)?;
                map.serialize_entry("notify", post.service.as_str())?;
            }
            Action::Notify(Notification::Team(t)) => {
                map.serialize_entry("notify", "team")?;
                map.serialize_entry("team", &t.team)?;
                let posts: Vec<PostEntry<'_>> = t.posts.iter().map(PostEntry).collect();
                map.serialize_entry("channels", &posts)?;
            }
        }
        map.end()
    }
}

/// The fields the timeline form may have.
#[derive(Deserialize)]
struct Recorded {
    shell: Option<String>,
    command: Option<Vec<String>>,
    cwd: Option<String>,
    shell_interpreter: Option<Vec<String>>,
    notify: Option<String>,
    text: Option<String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    body: Option<String>,
    team: Option<String>,
    #[serde(default)]
    channels: Vec<Action>,
}

/// Reads the timeline form back. What the timeline does not record stays
/// unset: the environment, accepted statuses, the redirect policy, and a
/// notification's text apart from its body.
impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Recorded::deserialize(d)?;
        let program = match (r.shell, r.command) {
            (Some(script), _) => Some(Program::Shell(script)),
            (None, Some(argv)) => Some(Program::Command(argv)),
            (None, None) => None,
        };
        if let Some(program) = program {
            return Ok(Action::Process(Invocation {
                program,
                env: Vec::new(),
                cwd: r.cwd,
                interpreter: r.shell_interpreter,
            }));
        }
        let request = Request {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body.map(Body::Text),
            expect: Vec::new(),
            insecure: false,
            max_redirects: 0,
        };
        let service = match r.notify.as_deref() {
            None => return Ok(Action::Http(request)),
            Some("console") => {
                let text = r.text.unwrap_or_default();
                return Ok(Action::Notify(Notification::Console(text)));
            }
            Some("team") => {
                let posts = r
                    .channels
                    .into_iter()
                    .filter_map(|a| match a {
                        Action::Notify(Notification::Post(p)) => Some(p),
                        _ => None,
                    })
                    .collect();
                return Ok(Action::Notify(Notification::Team(TeamPosts {
                    team: r.team.unwrap_or_default(),
                    posts,
                })));
            }
            Some(name) => Service::from_name(name).ok_or_else(|| {
                serde::de::Error::unknown_variant(
                    name,
                    &["console", "slack", "teams", "pagerduty", "webhook", "team"],
                )
            })?,
        };
        Ok(Action::Notify(Notification::Post(Post {
            service,
            request,
            text: None,
        })))
    }
}

fn request_entries<M: SerializeMap>(map: &mut M, req: &Request) -> Result<(), M::Error> {
    map.serialize_entry("method", &req.method)?;
    map.serialize_entry("url", &req.url)?;
    map.serialize_entry("headers", &req.headers)?;
    if let Some(body) = &req.body {
        map.serialize_entry("body", body)?;
    }
    Ok(())
}

/// How `--dry-run` shows the action: `$ command`, `console: text`, or
/// `[service: ]METHOD url` with the body on a second line.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (service, req) = match self {
            Action::Process(inv) => {
                return match &inv.program {
                    Program::Shell(script) => write!(f, "$ {script}"),
                    Program::Command(argv) => {
                        let words: Vec<String> = argv
                            .iter()
                            .map(|w| crate::template::shell_quote(w))
                            .collect();
                        write!(f, "$ {}", words.join(" "))
                    }
                };
            }
            Action::Notify(Notification::Console(text)) => return write!(f, "console: {text}"),
            Action::Notify(Notification::Team(t)) => {
                write!(f, "team {}:", t.team)?;
                for p in &t.posts {
                    let one = Action::Notify(Notification::Post(p.clone()));
                    for line in one.to_string().lines() {
                        write!(f, "\n  {line}")?;
                    }
                }
                return Ok(());
            }
            Action::Http(req) => (None, req),
            Action::Notify(Notification::Post(post)) => (Some(post.service), &post.request),
        };
        if let Some(service) = service {
            write!(f, "{}: ", service.as_str())?;
        }
        write!(f, "{} {}", req.method, req.url)?;
        if let Some(body) = &req.body {
            write!(f, "\nbody: {body}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::notify::{self, Renderer, Service};
    use crate::template::RenderError;
    use serde_json::json;

    /// Renders every template as itself.
    struct Verbatim;

    impl Renderer for Verbatim {
        fn text(&self, source: &str) -> Result<String, RenderError> {
            Ok(source.to_string())
        }
        fn url(&self, source: &str) -> Result<String, RenderError> {
            Ok(source.to_string())
        }
        fn json(&self, value: &serde_json::Value) -> Result<serde_json::Value, RenderError> {
            Ok(value.clone())
        }
        fn markup(&self, source: &str, _: crate::template::Sink) -> Result<String, RenderError> {
            Ok(source.to_string())
        }
        fn markup_json(
            &self,
            value: &serde_json::Value,
            _: crate::template::Sink,
        ) -> Result<serde_json::Value, RenderError> {
            Ok(value.clone())
        }
        fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
            value.clone()
        }
    }

    fn notify(yaml: &str, drill: bool) -> Action {
        let raw: crate::playbook::model::RawNotify = crate::yaml::from_str(yaml).unwrap();
        Action::Notify(
            notify::prepare(&raw, &Verbatim, drill, crate::clock::Clock::System).unwrap(),
        )
    }

    fn process(program: Program, cwd: Option<&str>) -> Action {
        Action::Process(Invocation {
            program,
            env: vec![("IRCTL_SECRET_TOKEN".into(), "hunter22".into())],
            cwd: cwd.map(str::to_string),
            interpreter: None,
        })
    }

    fn request(body: Option<Body>) -> Request {
        Request {
            method: "POST".into(),
            url: "https://api.example:8443/drain?x=1".into(),
            headers: vec![("X-Token".into(), "hunter22".into())],
            body,
            expect: vec![202],
            insecure: false,
            max_redirects: 5,
        }
    }

    #[test]
    fn the_timeline_form_keeps_its_keys_and_order() {
        let shell = process(Program::Shell("echo hi".into()), Some("/tmp"));
        assert_eq!(
            serde_json::to_string(&shell).unwrap(),
            r#"{"shell":"echo hi","cwd":"/tmp"}"#
        );
        let command = process(Program::Command(vec!["ls".into(), "-l".into()]), None);
        assert_eq!(
            serde_json::to_string(&command).unwrap(),
            r#"{"command":["ls","-l"]}"#
        );
        let http = Action::Http(request(Some(Body::Json(json!({ "b": 1, "a": [true] })))));
        assert_eq!(
            serde_json::to_string(&http).unwrap(),
            r#"{"method":"POST","url":"https://api.example:8443/drain?x=1","headers":[["X-Token","hunter22"]],"body":"{\"b\":1,\"a\":[true]}"}"#
        );
        let get = Action::Http(Request {
            method: "GET".into(),
            ..request(None)
        });
        assert_eq!(
            serde_json::to_string(&get).unwrap(),
            r#"{"method":"GET","url":"https://api.example:8443/drain?x=1","headers":[["X-Token","hunter22"]]}"#
        );
        assert_eq!(
            serde_json::to_string(&notify("console: { text: hi }", false)).unwrap(),
            r#"{"notify":"console","text":"hi"}"#
        );
        assert_eq!(
            serde_json::to_string(&notify(
                "slack: { webhook: https://hooks.example/T, text: hi }",
                false
            ))
            .unwrap(),
            r#"{"method":"POST","url":"https://hooks.example/T","headers":[["content-type","application/json"]],"body":"{\"text\":\"hi\"}","notify":"slack"}"#
        );
    }

    #[test]
    fn the_timeline_form_reads_back_and_summarises_in_one_line() {
        let actions = [
            process(Program::Shell("echo hi".into()), Some("/tmp")),
            process(Program::Command(vec!["ls".into(), "-l".into()]), None),
            Action::Http(request(Some(Body::Json(json!({ "a": 1 }))))),
            Action::Http(request(None)),
            notify("console: { text: hi }", false),
            notify("slack: { webhook: https://h/T, text: hi }", false),
            notify("pagerduty: { routing_key: k, action: resolve }", false),
        ];
        let summaries = [
            "echo hi",
            "ls -l",
            "POST https://api.example:8443/drain?x=1",
            "POST https://api.example:8443/drain?x=1",
            "console",
            "slack POST https://h/T",
            "pagerduty POST https://events.pagerduty.com/v2/enqueue",
        ];
        for (action, summary) in actions.iter().zip(summaries) {
            let written = serde_json::to_string(action).unwrap();
            let read: Action = serde_json::from_str(&written).unwrap();
            assert_eq!(serde_json::to_string(&read).unwrap(), written);
            assert_eq!(read.summary(), summary);
        }
        let unknown = serde_json::from_str::<Action>(r#"{"notify":"fax","url":"x"}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn notification_text_is_what_people_read() {
        assert_eq!(
            notify("console: { text: hi }", false)
                .notification_text()
                .as_deref(),
            Some("hi")
        );
        assert_eq!(
            notify("slack: { webhook: https://h, text: db down }", true)
                .notification_text()
                .as_deref(),
            Some("[DRILL] db down")
        );
        assert_eq!(
            notify(
                "teams: { webhook: https://h, title: Title, text: Body }",
                false
            )
            .notification_text()
            .as_deref(),
            Some("Title\nBody")
        );
        assert_eq!(
            notify(
                "pagerduty: { routing_key: k, action: trigger, summary: sum }",
                false
            )
            .notification_text()
            .as_deref(),
            Some("sum")
        );
        let resolve = notify(
            "pagerduty: { routing_key: k, action: resolve, dedup_key: d }",
            false,
        );
        let body = resolve.request().and_then(|r| r.body.as_ref()).unwrap();
        assert_eq!(resolve.notification_text(), Some(body.to_string()));
        assert_eq!(
            notify("webhook: { url: https://h, json: { a: 1 } }", false)
                .notification_text()
                .as_deref(),
            Some("{\"a\":1}")
        );
        let shell = process(Program::Shell("echo".into()), None);
        assert_eq!(shell.notification_text(), None);
    }

    #[test]
    fn command_line_joins_argv() {
        let argv = ["kubectl", "get", "pods"].map(String::from).to_vec();
        assert_eq!(
            process(Program::Command(argv), None)
                .command_line()
                .as_deref(),
            Some("kubectl get pods")
        );
        assert_eq!(
            process(Program::Shell("echo hi".into()), None)
                .command_line()
                .as_deref(),
            Some("echo hi")
        );
        assert_eq!(Action::Http(request(None)).command_line(), None);
    }

    #[test]
    fn the_plan_shows_actions_as_people_read_them() {
        let argv = vec!["echo".into(), "a b".into()];
        assert_eq!(
            process(Program::Command(argv), None).to_string(),
            "$ echo 'a b'"
        );
        assert_eq!(
            Action::Http(request(Some(Body::Text("x".into())))).to_string(),
            "POST https://api.example:8443/drain?x=1\nbody: x"
        );
        assert_eq!(
            notify("console: { text: hi }", false).to_string(),
            "console: hi"
        );
        let slack = notify("slack: { webhook: https://h, text: hi }", false);
        assert!(
            slack
                .to_string()
                .starts_with("slack: POST https://h\nbody: ")
        );
    }

    #[test]
    fn redaction_masks_every_shown_field_and_the_debug_form_hides_env() {
        let secret = crate::secret::Secret::new("hunter22".to_string());
        let r = Redactor::new([&secret]);
        let http = Action::Http(request(Some(Body::Json(json!({ "token": "hunter22" })))));
        let shown = serde_json::to_string(&http.redacted(&r)).unwrap();
        assert!(!shown.contains("hunter22"), "{shown}");
        let shell = process(Program::Shell("echo hunter22".into()), None);
        assert_eq!(shell.redacted(&r).to_string(), "$ echo ***");
        let quiet = process(Program::Shell("echo hi".into()), None);
        let debug = format!("{quiet:?}");
        assert!(
            debug.contains("IRCTL_SECRET_TOKEN") && !debug.contains("hunter22"),
            "{debug}"
        );
        let post = notify("slack: { webhook: https://h/hunter22, text: hi }", false);
        let shown = post.redacted(&r);
        assert_eq!(
            shown.request().map(|q| q.url.as_str()),
            Some("https://h/***")
        );
        assert_eq!(request(None).header("x-token"), Some("hunter22"));
        assert!(matches!(
            post.redacted(&r),
            Action::Notify(Notification::Post(Post {
                service: Service::Slack,
                ..
            }))
        ));
    }
}
