//! A step's action (`shell`, `command`, `http`, `notify`): exactly one, well formed.

use super::*;

use crate::playbook::model::RawStep;

pub(super) fn check_action(c: &mut Checker<'_>, step: &RawStep) {
    let mut kinds = Vec::new();
    if step.shell.is_some() {
        kinds.push("shell");
    }
    if step.command.is_some() {
        kinds.push("command");
    }
    if step.http.is_some() {
        kinds.push("http");
    }
    if step.notify.is_some() {
        kinds.push("notify");
    }
    let id = &step.id.value;
    match kinds.as_slice() {
        [] => {
            c.error(step.id.pos, "schema", format!("step `{id}` has no action"))
                .with_width_mut(id.len())
                .help = Some("give it one of `shell`, `command`, `http` or `notify`".into());
            return;
        }
        [_] => {}
        many => {
            let list = backticked(many, " and ");
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}` has more than one action: {list}"),
            )
            .with_width_mut(id.len())
            .help =
                Some("a step does exactly one thing; split it into steps joined by `needs`".into());
            return;
        }
    }
    let is_process = step.shell.is_some() || step.command.is_some();
    if !is_process && (!step.env.is_empty() || step.cwd.is_some()) {
        c.error(
            step.id.pos,
            "schema",
            format!("step `{id}`: `env` and `cwd` apply only to `shell` and `command`"),
        );
    }
    if let Some(argv) = &step.shell_interpreter {
        if step.shell.is_none() {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `shell_interpreter` applies only to `shell`"),
            );
        } else if argv.first().is_none_or(|p| p.trim().is_empty()) {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `shell_interpreter` needs at least the program name"),
            )
            .help = Some("for example `shell_interpreter: [sh, -c]`".into());
        } else if let (Some(script), Some(program)) = (&step.shell, argv.first())
            && !is_posix_shell(program)
            && crate::template::is_templated(&script.value)
        {
            // Values are escaped for the shell context they sit in; another
            // language would read them as code.
            c.error(
                step.id.pos,
                "shell-context",
                format!(
                    "step `{id}`: values in `shell` are escaped for a POSIX shell, but `shell_interpreter` runs `{program}`"
                ),
            )
            .help = Some(
                "use sh, bash, dash, ksh or zsh, or pass values through `env` and read them from the environment".into(),
            );
        }
    }
    if let Some(cmd) = &step.command
        && cmd.is_empty()
    {
        c.error(
            step.id.pos,
            "schema",
            format!("step `{id}`: `command` needs at least the program name"),
        );
    }
    if let Some(n) = &step.notify {
        let count = [
            n.slack.is_some(),
            n.teams.is_some(),
            n.pagerduty.is_some(),
            n.webhook.is_some(),
            n.console.is_some(),
            n.team.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `notify` needs exactly one of `slack`, `teams`, `pagerduty`, `webhook`, `console`, `team`, found {count}"),
            );
        }
        match (&n.team, &n.text) {
            (Some(team), None) => {
                c.error(
                    team.pos,
                    "schema",
                    format!("step `{id}`: `notify: {{ team }}` needs a `text`"),
                );
            }
            (None, Some(_)) => {
                c.error(
                    step.id.pos,
                    "schema",
                    format!("step `{id}`: `notify.text` and `notify.title` go with `team`; other targets take their own `text`"),
                );
            }
            _ => {}
        }
        if let Some(pd) = &n.pagerduty {
            use crate::playbook::model::PagerdutyAction as A;
            let action = pd.action.value;
            if matches!(action, A::Acknowledge | A::Resolve) && pd.dedup_key.is_none() {
                c.error(
                    pd.action.pos,
                    "schema",
                    format!("step `{id}`: PagerDuty `{action:?}` needs a `dedup_key`")
                        .to_lowercase(),
                );
            }
            if matches!(action, A::Trigger | A::Change) && pd.summary.is_none() {
                c.error(
                    step.id.pos,
                    "schema",
                    format!("step `{id}`: PagerDuty events need a `summary`"),
                );
            }
        }
    }
    if let Some(h) = &step.http {
        if let Some(m) = &h.method {
            let upper = m.value.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
                .contains(&upper.as_str())
            {
                c.error(
                    m.pos,
                    "schema",
                    format!("unsupported HTTP method `{}`", m.value),
                )
                .with_width_mut(m.value.len());
            }
        }
        if h.json.is_some() && h.body.is_some() {
            c.error(
                step.id.pos,
                "schema",
                format!("step `{id}`: `http` takes `json` or `body`, not both"),
            );
        }
    }
}

/// Whether `program` (a path or a name) is a shell whose quoting irctl's
/// per-context escaping is written for.
fn is_posix_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    matches!(
        name,
        "sh" | "bash" | "dash" | "ksh" | "mksh" | "zsh" | "busybox"
    )
}
