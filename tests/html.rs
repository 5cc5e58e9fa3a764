//! `irctl timeline --format html` and `irctl postmortem --format html`: one
//! self-contained page (a strict CSP, nothing fetched), every text escaped
//! after redaction (hostile step output, notes with markup, bidi and
//! control characters, a secret with HTML metacharacters), and, where
//! headless Chromium is installed, a screenshot whose Gantt bars are where
//! the SVG says and in the order the steps ran.

mod common;
#[path = "support/state.rs"]
mod state;

use std::path::Path;
use std::process::{Command, Stdio};

use common::unindent;
use state::State;

/// A secret whose value HTML would escape: redaction must happen first.
const SECRET: &str = "p&ss<w>rd\"9f";

/// The only elements a page has: nothing that runs, links or fetches.
const ELEMENTS: [&str; 21] = [
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "svg",
    "rect", "line", "text", "polygon", "table", "tr", "th", "td", "span",
];

/// Asserts every tag of `html` is one of [`ELEMENTS`] and the style fetches nothing.
#[track_caller]
fn only_our_elements(html: &str) {
    for tag in html.split('<').skip(1) {
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        assert!(
            ELEMENTS.contains(&name.as_str()),
            "element `<{name}` in:\n{html}"
        );
    }
    let lower = html.to_lowercase();
    for bad in ["@import", "url(", " href=", " on"] {
        let in_tags = lower.split('<').skip(1).any(|t| {
            t.split('>')
                .next()
                .is_some_and(|inside| inside.contains(bad))
        });
        assert!(!in_tags, "`{bad}` inside a tag:\n{html}");
    }
}

fn run_playbook(state: &State, yaml: &str) -> String {
    let root = state.path().parent().expect("parent").to_path_buf();
    let dir = root.join("book");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("p.yaml"), unindent(yaml)).expect("write playbook");
    state
        .irctl()
        .env("IRCTL_SECRET_TOKEN", SECRET)
        .args(["run", "p", "--label", "app=t", "--playbooks"])
        .arg(&dir)
        .run();
    let runs = state
        .irctl()
        .args(["runs", "--format", "json"])
        .run()
        .json();
    runs[0]["run_id"].as_str().expect("run id").to_string()
}

const HOSTILE: &str = r#"
    version: 1
    name: p
    title: "</title><script>alert(1)</script>"
    steps:
      - id: out
        shell: |
          printf '%s\n' '</script><script>alert(1)</script>' '<img src=x onerror=alert(1)>' '" onmouseover="alert(1)' "x' onclick='y" '<svg onload=alert(1)>'
          printf 'rtl \342\200\256gpj.exe esc \033[31m red\n'
          printf 'token %s\n' "$IRCTL_SECRET_TOKEN"
    "#;

#[test]
fn hostile_text_stays_text_and_secrets_stay_hidden() {
    let state = State::new();
    let run = run_playbook(&state, HOSTILE);
    state
        .irctl()
        .env("IRCTL_SECRET_TOKEN", SECRET)
        .args([
            "note",
            "--run",
            &run,
            &format!("saw <b onclick=x>{SECRET}</b> \u{202e}"),
        ])
        .run();
    let runs = state
        .irctl()
        .args(["runs", "--format", "json"])
        .run()
        .json();
    let incident = runs[0]["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    for args in [
        vec!["timeline", run.as_str(), "--format", "html"],
        vec![
            "postmortem",
            "--incident",
            incident.as_str(),
            "--format",
            "html",
        ],
    ] {
        let html = state
            .irctl()
            .env("IRCTL_SECRET_TOKEN", SECRET)
            .args(&args)
            .run()
            .stdout;
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(
            html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'"),
            "{html}"
        );
        only_our_elements(&html);
        assert!(
            html.contains("&lt;/script&gt;&lt;script&gt;alert(1)"),
            "{html}"
        );
        assert!(html.contains("&quot; onmouseover=&quot;alert(1)"), "{html}");
        assert!(
            !html.contains(SECRET) && !html.contains("p&amp;ss&lt;w&gt;rd"),
            "{html}"
        );
        assert!(
            html.contains("saw &lt;b onclick=x&gt;***&lt;/b&gt;"),
            "{html}"
        );
        assert!(
            !html.contains('\u{202e}') && !html.contains('\u{1b}'),
            "{html}"
        );
        assert!(
            html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"gantt\""),
            "{html}"
        );
    }
}

const CHAIN: &str = r#"
    version: 1
    name: p
    title: Chain
    steps:
      - id: first
        shell: sleep 0.3
      - id: second
        needs: [first]
        shell: sleep 0.3; exit 1
        continue_on_error: true
      - id: third
        needs: [second]
        trigger: always
        shell: sleep 0.3
    "#;

/// One bar as the SVG places it.
#[derive(Debug)]
struct Bar {
    start: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: [u8; 3],
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[at..].split('"').next().expect("value").to_string()
}

fn bars(html: &str) -> Vec<Bar> {
    html.split("<rect class=\"bar\"")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find("/>").expect("end of rect")];
            let f = |n: &str| attr(tag, n).parse::<f64>().expect("number");
            let hex = attr(tag, "fill");
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex");
            Bar {
                start: attr(tag, "data-start"),
                x: f("x"),
                y: f("y"),
                w: f("width"),
                h: f("height"),
                fill: [byte(1), byte(3), byte(5)],
            }
        })
        .collect()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

fn screenshot(browser: &str, html: &Path, png: &Path) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1200,1400",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run chromium");
    assert!(
        status.success() && png.is_file(),
        "chromium made no screenshot"
    );
}

#[test]
fn chromium_draws_the_bars_in_the_order_the_steps_ran() {
    let state = State::new();
    let run = run_playbook(&state, CHAIN);
    let html = state
        .irctl()
        .args(["timeline", &run, "--format", "html"])
        .run()
        .stdout;
    let bars = bars(&html);
    assert_eq!(bars.len(), 3, "{html}");
    // The SVG itself: each step starts after the one before, further right.
    for pair in bars.windows(2) {
        assert!(pair[0].start < pair[1].start, "{bars:?}");
        assert!(pair[0].x + pair[0].w <= pair[1].x + 1.0, "{bars:?}");
        assert!(pair[0].y < pair[1].y, "{bars:?}");
    }
    let Some(browser) = chromium() else {
        println!(
            "SKIPPED: headless Chromium (Debian package chromium) is not installed; the page's rendering was not checked"
        );
        return;
    };
    let dir = state.path().parent().expect("parent").to_path_buf();
    let page = dir.join("timeline.html");
    let png = dir.join("timeline.png");
    std::fs::write(&page, &html).expect("write page");
    screenshot(browser, &page, &png);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let pixel = |x: usize, y: usize| {
        let at = (y * info.width as usize + x) * channels;
        [buf[at], buf[at + 1], buf[at + 2]]
    };
    let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(p, q)| p.abs_diff(q) <= 6);
    // Where the SVG sits on the page: the top-left pixel of the first bar's
    // fill (nothing above it has that colour: the legend is below).
    let first = &bars[0];
    let (w, h) = (info.width as usize, info.height as usize);
    let origin = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .find(|&(x, y)| near(pixel(x, y), first.fill))
        .expect("the first bar is on the screenshot");
    let dx = origin.0 as f64 - first.x;
    let dy = origin.1 as f64 - first.y;
    let mut centres = Vec::new();
    for b in &bars {
        let cx = (dx + b.x + b.w / 2.0).round() as usize;
        let cy = (dy + b.y + b.h / 2.0).round() as usize;
        assert!(
            near(pixel(cx, cy), b.fill),
            "bar starting {} is not drawn at ({cx}, {cy}): {:?} instead of {:?}",
            b.start,
            pixel(cx, cy),
            b.fill
        );
        centres.push(cx);
    }
    assert!(
        centres.windows(2).all(|p| p[0] < p[1]),
        "bars out of order: {centres:?}"
    );
}
