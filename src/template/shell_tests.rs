//! The shell lexer's classifications, and every escaping run through real
//! shells with hostile values: the output must be exactly the value and
//! nothing may execute.

use std::path::Path;
use std::process::Command;

use super::shell::{Context, classify};
use super::{Sink, render, value};

fn contexts(src: &str) -> Vec<Context> {
    classify(src)
        .unwrap()
        .into_iter()
        .map(|s| s.context)
        .collect()
}

#[test]
fn classifies_quotes_and_nesting() {
    use Context::*;
    assert_eq!(
        contexts(
            r#"echo {{a}} "x {{b}}" 'y {{c}}' $'z {{d}}' "$(echo {{e}} "{{f}}")" `echo {{g}}`"#
        ),
        [
            Unquoted,
            DoubleQuoted,
            SingleQuoted,
            AnsiC,
            Unquoted,
            DoubleQuoted,
            Unquoted
        ]
    );
    assert_eq!(
        contexts("echo \"it's {{a}}\" 'say \"{{b}}\"' \\\"{{c}}"),
        [DoubleQuoted, SingleQuoted, Unquoted]
    );
    assert_eq!(contexts("echo ${X:-{{a}}}"), [Unsupported("inside `${…}`")]);
}

#[test]
fn classifies_command_positions_and_comments() {
    use Context::*;
    let got = contexts(
        "{{a}} x\nls | {{b}}; {{c}} && \"{{d}}\"\nif {{e}}; then X={{f}} {{g}} y; fi # {{h}}\n( {{i}} )\necho {{j}} # ok\neval {{k}}\necho a#{{l}}",
    );
    assert_eq!(
        got,
        [
            CommandName,
            CommandName,
            CommandName,
            CommandName,
            CommandName,
            Unquoted,
            CommandName,
            Comment,
            CommandName,
            Unquoted,
            CommandName,
            Unquoted
        ]
    );
}

#[test]
fn classifies_heredocs() {
    let slots = classify(
        "cat <<EOF\nhost {{a}}\n$(echo {{b}})\nEOF\ncat <<-'END' > f\n\t{{c}}\nEND\necho {{d}}",
    )
    .unwrap();
    let unquoted = Context::Heredoc {
        quoted: false,
        delimiter: "EOF".into(),
        strip_tabs: false,
    };
    assert_eq!(slots[0].context, unquoted);
    assert_eq!(
        slots[0].line_neighbours,
        Some(("host ".to_string(), String::new()))
    );
    assert_eq!(slots[1].context, Context::Unquoted);
    assert_eq!(
        slots[2].context,
        Context::Heredoc {
            quoted: true,
            delimiter: "END".into(),
            strip_tabs: true
        }
    );
    assert_eq!(slots[3].context, Context::Unquoted);
    assert_eq!(
        contexts("cat <<{{a}}\nx\n"),
        [Context::Unsupported("in a heredoc delimiter")]
    );
}

#[test]
fn finds_arguments_and_double_dashes() {
    let slots = classify(
        "ssh -o X=1 {{a}} up; ssh -- {{b}}; cp x{{c}} \"{{d}}\" >{{e}} -o{{f}}\n{% if z %}--{% endif %} {{g}}",
    )
    .unwrap();
    let starts: Vec<(bool, bool)> = slots
        .iter()
        .map(|s| (s.word_start, s.after_dashdash))
        .collect();
    assert_eq!(
        starts,
        [
            (true, false),
            (true, true),
            (false, false),
            (true, false),
            (false, false),
            (false, false),
            (true, false)
        ]
    );
}

#[test]
fn loop_bodies_are_lexed_as_written() {
    let got = contexts(
        "{% for h in hosts %}ping -c1 \"{{ h }}\"\n{% endfor %}{% for c in cmds %}{{ c }}\n{% endfor %}",
    );
    assert_eq!(got, [Context::DoubleQuoted, Context::CommandName]);
}

#[test]
fn the_lexer_is_bounded() {
    assert!(classify(&"\"$(".repeat(100)).is_err());
    assert!(classify(&"x".repeat(super::shell::MAX_SOURCE + 1)).is_err());
}

const HOSTILE: &[&str] = &[
    "$(touch MARK)",
    "`touch MARK`",
    "\"; touch MARK; \"",
    "'; touch MARK; '",
    "'\"'\"'$(touch MARK)",
    "\\",
    "a\\\\b\\",
    "\\'$(touch MARK)",
    "line1\nline2\n",
    ";touch MARK",
    "|touch MARK",
    "&touch MARK&",
    "$'\\x41'",
    "${IFS}$HOME*~!",
    "\\$(touch MARK)",
    "\t tab\r",
    "",
    "EOF",
    "x\nEOF\ntouch MARK",
    "-oProxyCommand=touch MARK",
];

/// Runs `script` with `shell` in a fresh directory; returns stdout and
/// whether the payload's marker file appeared.
fn run(shell: &str, script: &str) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let marked = Path::new(&dir.path().join("MARK")).exists();
    (String::from_utf8_lossy(&out.stdout).into_owned(), marked)
}

fn has(shell: &str) -> bool {
    Command::new(shell).arg("-c").arg(":").status().is_ok()
}

/// Renders `template` with `incident.labels.x = v`; for each shell, checks
/// nothing ran and the output is `expect(v)` (`None`: any output is fine).
fn check(template: &str, shells: &[&str], expect: impl Fn(&str) -> Option<String>) {
    for v in HOSTILE {
        let ctx = value(serde_json::json!({"incident": {"labels": {"x": v}}}));
        let Ok(script) = render(template, Sink::Shell, &ctx) else {
            continue;
        };
        for shell in shells.iter().filter(|s| has(s)) {
            let (out, marked) = run(shell, &script);
            assert!(!marked, "{shell} ran the payload of {v:?} in {script:?}");
            if let Some(want) = expect(v) {
                assert_eq!(out, want, "{shell}: {v:?} rendered as {script:?}");
            }
        }
    }
}

const SHELLS: &[&str] = &["sh", "bash", "dash"];

#[test]
fn every_context_keeps_hostile_values_literal() {
    let exact = |v: &str| Some(v.to_string());
    check("printf -- '%s' {{ incident.labels.x }}", SHELLS, exact);
    check("printf -- '%s' \"{{ incident.labels.x }}\"", SHELLS, exact);
    check("printf -- '%s' '{{ incident.labels.x }}'", SHELLS, exact);
    check(
        "printf -- '%s' \"a{{ incident.labels.x }}b\"",
        SHELLS,
        |v| Some(format!("a{v}b")),
    );
    check(
        "v={{ incident.labels.x }}; printf -- '%s' \"$v\"",
        SHELLS,
        exact,
    );
    let substituted = |v: &str| Some(v.trim_end_matches('\n').to_string());
    check(
        "printf -- '%s' \"$(printf -- '%s' {{ incident.labels.x }})\"",
        SHELLS,
        substituted,
    );
    check(
        "printf -- '%s' \"$(printf -- '%s' \"{{ incident.labels.x }}\")\"",
        SHELLS,
        substituted,
    );
    check(
        "printf -- '%s' `printf -- '%s' '{{ incident.labels.x }}' | od -An -c | tr -d ' \\n'`",
        SHELLS,
        |_| None,
    );
    check(
        "v=`printf -- '%s' \"{{ incident.labels.x }}\"`; printf -- '%s' \"$v\"",
        SHELLS,
        substituted,
    );
    // `$'…'` is bash's; other shells read `$` then a quoted string.
    check(
        "printf -- '%s' $'{{ incident.labels.x }}'",
        &["bash"],
        exact,
    );
    check("printf -- '%s' $'{{ incident.labels.x }}'", SHELLS, |_| {
        None
    });
}

#[test]
fn heredoc_bodies_keep_values_literal_and_refuse_the_delimiter() {
    let line = |v: &str| Some(format!("{v}\n"));
    check("cat <<EOF\n{{ incident.labels.x }}\nEOF", SHELLS, line);
    check("cat <<'EOF'\n{{ incident.labels.x }}\nEOF", SHELLS, line);
    check("cat <<-EOF\n\t{{ incident.labels.x }}\nEOF", SHELLS, |v| {
        Some(format!("{}\n", v.trim_start_matches('\t')))
    });
    let ctx = |v: &str| value(serde_json::json!({"incident": {"labels": {"x": v}}}));
    // (template, value, refused)
    let cases = [
        ("cat <<EOF\n{{ incident.labels.x }}\nEOF", "EOF", true),
        (
            "cat <<EOF\n{{ incident.labels.x }}\nEOF",
            "x\nEOF\ntouch MARK",
            true,
        ),
        ("cat <<EOF\n{{ incident.labels.x }}\nEOF", "OF", false),
        ("cat <<'EOF'\n{{ incident.labels.x }}\nEOF", "EOF", true),
        ("cat <<-EOF\n{{ incident.labels.x }}\nEOF", "\t\tEOF", true),
        ("cat <<EOF\nE{{ incident.labels.x }}\nEOF", "OF", true),
        ("cat <<EOF\nE{{ incident.labels.x }}\nEOF", "EOF", false),
        (
            "cat <<EOF\n{{ incident.labels.x }}{{ incident.labels.x }}\nEOF",
            "O",
            true,
        ),
        (
            "cat <<EOF\n{{ incident.labels.x }}{{ incident.labels.x }}\nEOF",
            "a\nb",
            true,
        ),
        (
            "cat <<EOF\n{{ incident.labels.x }}{{ incident.labels.x }}\nEOF",
            "ab",
            false,
        ),
    ];
    for (src, v, refused) in cases {
        match render(src, Sink::Shell, &ctx(v)) {
            Err(e) => {
                assert!(refused, "{src} refused {v:?}: {e}");
                assert!(e.to_string().contains("would end the heredoc"), "{e}");
            }
            Ok(out) => assert!(!refused, "{src} took {v:?}: {out:?}"),
        }
    }
}

#[test]
fn options_are_refused_where_a_value_begins_an_argument() {
    let ctx =
        value(serde_json::json!({"incident": {"labels": {"x": "-oProxyCommand=touch MARK"}}}));
    for src in [
        "ssh -o BatchMode=yes {{ incident.labels.x }} uptime",
        "ssh \"{{ incident.labels.x }}\" uptime",
        "ssh '{{ incident.labels.x }}'",
        "ssh {{ incident.labels.x }}.example",
    ] {
        let err = render(src, Sink::Shell, &ctx).expect_err(src).to_string();
        assert!(err.contains("starts with '-'"), "{err}");
    }
    for src in [
        "ssh -- {{ incident.labels.x }} uptime",
        "ssh {{ incident.labels.x | allow_option }}",
        "ssh host=\"{{ incident.labels.x }}\"",
        "echo x >{{ incident.labels.x }}",
    ] {
        assert!(render(src, Sink::Shell, &ctx).is_ok(), "{src}");
    }
    let argv = |a: &[&str]| {
        let rendered: Vec<String> = a
            .iter()
            .map(|s| render(s, Sink::Text, &ctx).unwrap())
            .collect();
        super::check_argv(a, &rendered)
    };
    assert!(argv(&["ssh", "{{ incident.labels.x }}", "uptime"]).is_err());
    assert!(argv(&["ssh", "--", "{{ incident.labels.x }}"]).is_ok());
    assert!(argv(&["ssh", "{{ incident.labels.x | allow_option }}"]).is_ok());
}

#[test]
fn comments_refuse_line_breaks_and_safe_is_explicit() {
    let ctx = value(serde_json::json!({"x": "a\ntouch MARK", "y": "$(id)", "n": 3}));
    assert!(render("true # {{ x }}", Sink::Shell, &ctx).is_err());
    assert_eq!(
        render(
            "echo {{ y | safe }} \"{{ y | tojson }}\"",
            Sink::Shell,
            &ctx
        )
        .unwrap(),
        "echo $(id) \"\\\"\\$(id)\\\"\""
    );
    assert_eq!(
        render("echo $(( {{ n }} + 1 ))", Sink::Shell, &ctx).unwrap(),
        "echo $(( 3 + 1 ))"
    );
}

#[test]
fn secrets_are_references_in_every_context() {
    let ctx = super::value(serde_json::json!({}));
    let ctx = minijinja::value::merge_maps([
        minijinja::context! { secrets => minijinja::context! { T => super::shell_secret("IRCTL_SECRET_T") } },
        ctx,
    ]);
    let out = render(
        "a {{ secrets.T }} \"b {{ secrets.T }}\" 'c {{ secrets.T }}' $'d {{ secrets.T }}'",
        Sink::Shell,
        &ctx,
    )
    .unwrap();
    assert_eq!(
        out,
        r#"a "${IRCTL_SECRET_T}" "b ${IRCTL_SECRET_T}" 'c '"${IRCTL_SECRET_T}"'' $'d '"${IRCTL_SECRET_T}"$''"#
    );
    assert!(render("cat <<'E'\n{{ secrets.T }}\nE", Sink::Shell, &ctx).is_err());
}
