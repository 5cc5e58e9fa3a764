//! Untrusted data where it could become code: `| safe` on it, a command
//! name or comment made of it, a place no escaping works, and a value that
//! begins an argument (and so could be an option) in `shell` and `command`.
//! The shell lexing and the trust policy live in `crate::template`.

use super::*;

use crate::playbook::model::Text;
use crate::template::trust::{self, Finding, Problem};
use crate::template::{self, Trust};

/// The playbook's trust policy: an input is untrusted unless its default
/// is a literal or built only from trusted values.
pub(super) fn trust(raw: &RawPlaybook) -> Trust {
    let base = Trust::default();
    Trust::new(raw.inputs.iter().filter_map(|(name, input)| {
        let untrusted = match input.default.as_ref().map(|d| &d.value) {
            None => true,
            Some(serde_json::Value::String(s)) => {
                template::is_templated(s) && base.template_untrusted(s)
            }
            Some(_) => false,
        };
        untrusted.then(|| name.clone())
    }))
}

const UNTRUSTED: &str = "incident data, a step's output, or an input without a literal default";

impl Checker<'_> {
    /// Reports the injection findings of one template field.
    pub(super) fn injection(&mut self, field: &Field<'_>) {
        let mut findings = match field.kind {
            FieldKind::Expression => {
                let raw = template::trust::raw_findings(
                    &self.trust,
                    &format!("{{{{ {} }}}}", field.text),
                );
                raw.into_iter()
                    .map(|f| Finding {
                        line: 1,
                        text: field.text.to_string(),
                        ..f
                    })
                    .collect()
            }
            _ => trust::raw_findings(&self.trust, field.text),
        };
        if field.kind == FieldKind::Shell {
            match trust::shell_findings(&self.trust, field.text) {
                Ok(f) => findings.extend(f),
                Err(e) => {
                    self.error(
                        field.pos,
                        "shell-context",
                        format!("`{}`: {e}", field.label),
                    );
                }
            }
        }
        for f in findings {
            let at = self.index.scalar_line(field.pos, f.line);
            let at = self.index.locate(at, &f.text);
            if f.problem == Problem::RawUntrusted {
                let at = self.index.locate(at, "safe");
                self.injection_finding(at, "safe".len(), &field.label, &f.problem);
            } else {
                self.injection_finding(at, f.text.len(), &field.label, &f.problem);
            }
        }
    }

    fn injection_finding(&mut self, at: Pos, width: usize, label: &str, problem: &Problem) {
        let (error, code, msg, help) = match problem {
            Problem::RawUntrusted => (
                true,
                "unsafe-interpolation",
                format!("`| safe` disables escaping of untrusted data in `{label}`"),
                format!("the value can come from {UNTRUSTED}; remove `| safe` so it is escaped for where it lands"),
            ),
            Problem::CommandName => (
                true,
                "shell-command-name",
                format!("a value from the incident cannot be a command name in `{label}`"),
                format!("the value can come from {UNTRUSTED}; write the command yourself and pass the value as an argument"),
            ),
            Problem::Comment => (
                true,
                "shell-comment",
                format!("a value from the incident cannot sit in a comment in `{label}`"),
                "a line break in the value would end the comment and run the rest; move the value out of the comment".into(),
            ),
            Problem::Unsupported(place) => (
                true,
                "shell-context",
                format!("a value cannot be placed {place} in `{label}`"),
                "no escaping makes a value safe there; assign it to a variable first (`v={{ … }}`) and use `\"$v\"`".into(),
            ),
            Problem::MaybeOption => (
                false,
                "option-injection",
                format!("a value from the incident begins an argument in `{label}`; if it starts with `-` the step fails rather than pass it as an option"),
                format!("put `--` before it so it cannot be an option, or write `| {}` if an option is intended", template::ALLOW_OPTION),
            ),
        };
        let d = if error {
            self.error(at, code, msg)
        } else {
            self.warning(at, code, msg)
        };
        d.with_width_mut(width).help = Some(help);
    }

    /// Checks a `command:` argv for an untrusted program name or option.
    pub(super) fn check_argv(&mut self, id: &str, argv: &[Text]) {
        let sources: Vec<&str> = argv.iter().map(|a| a.value.as_str()).collect();
        for (i, problem) in trust::argv_findings(&self.trust, &sources) {
            let arg = &argv[i];
            let label = format!("steps.{id}.command[{i}]");
            self.injection_finding(arg.pos, arg.value.len(), &label, &problem);
        }
        self.secrets_in_argv(argv);
    }

    /// Warns where a secret's value lands in an argv: any user on the host
    /// can read a process's arguments (`ps`, `/proc/PID/cmdline`), while
    /// its environment is private to its owner.
    fn secrets_in_argv(&mut self, argv: &[Text]) {
        for arg in argv {
            if !template::is_templated(&arg.value) {
                continue;
            }
            let Ok(vars) = template::analyze_template(&arg.value) else {
                continue;
            };
            for path in vars {
                let Some(name) = path
                    .strip_prefix("secrets.")
                    .map(|n| n.split('.').next().unwrap_or(n))
                else {
                    continue;
                };
                let at = self.index.locate(arg.pos, &path);
                self.warning(
                    at,
                    "secret-in-argv",
                    format!("secret `{name}` is passed on the command line, where other users of the host can read it (`ps`)"),
                )
                .with_width_mut(path.len())
                .help = Some(format!(
                    "pass it through the environment instead: the step's process gets it as `{}{name}`; have the program read that variable (or stdin)",
                    crate::env::SECRET_PREFIX
                ));
            }
        }
    }
}
