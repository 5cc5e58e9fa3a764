//! Load generator for `benches/serve.py`: posts Alertmanager deliveries to a
//! receiver on 127.0.0.1 and prints what it measured as one JSON line.
//!
//! Written in Rust on a single-threaded runtime because on a 2-core machine
//! the client shares the cores with the server it measures: the Python
//! client this replaces spent more CPU per request than `irctl serve` did,
//! so it, not serve, set the figures. `serve.py` builds and runs it:
//!
//!     serve_load --port P --token T --senders 200 --per-sender 100
//!     serve_load --port P --token T --senders 200 --open-rate 2000 --seconds 20
//!
//! Closed loop (`--per-sender`): each connection posts its next delivery as
//! soon as the previous one is answered. Open loop (`--open-rate`): each
//! connection keeps a fixed schedule, and a latency counts from when its
//! delivery was due, so a slow answer is charged to every delivery it held
//! up. Bounded: every answer has a 30 s deadline and the run stops after
//! `--max-seconds`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};

/// What the command line asked for.
struct Args {
    port: u16,
    token: String,
    senders: u64,
    per_sender: u64,
    open_rate: Option<f64>,
    seconds: f64,
    max_seconds: f64,
    first: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        token: String::new(),
        senders: 200,
        per_sender: 100,
        open_rate: None,
        seconds: 20.0,
        max_seconds: 120.0,
        first: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` adds `--bench`; nothing else takes no value.
        if flag == "--bench" {
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--port" => a.port = value.parse().map_err(|e| bad(&e))?,
            "--token" => a.token = value,
            "--senders" => a.senders = value.parse().map_err(|e| bad(&e))?,
            "--per-sender" => a.per_sender = value.parse().map_err(|e| bad(&e))?,
            "--open-rate" => a.open_rate = Some(value.parse().map_err(|e| bad(&e))?),
            "--seconds" => a.seconds = value.parse().map_err(|e| bad(&e))?,
            "--max-seconds" => a.max_seconds = value.parse().map_err(|e| bad(&e))?,
            "--first" => a.first = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.port == 0 || a.senders == 0 {
        return Err("--port and a non-zero --senders are required".into());
    }
    Ok(a)
}

/// The same delivery `serve.py` always sent: one distinct alert per `i`.
fn request(i: u64, token: &str) -> Vec<u8> {
    let name = format!("Bench{i}");
    let body = format!(
        concat!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"{n}\"}}","status":"firing","#,
            r#""receiver":"irctl","groupLabels":{{"alertname":"{n}"}},"#,
            r#""commonLabels":{{"alertname":"{n}","severity":"warning"}},"#,
            r#""commonAnnotations":{{"summary":"benchmark"}},"externalURL":"http://alertmanager:9093","#,
            r#""alerts":[{{"status":"firing","labels":{{"alertname":"{n}","severity":"warning","instance":"db-1:9100"}},"#,
            r#""annotations":{{"summary":"benchmark"}},"startsAt":"2024-01-01T10:00:00Z","#,
            r#""endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph","#,
            r#""fingerprint":"{i:016x}"}}]}}"#
        ),
        n = name,
        i = i
    );
    let mut req = format!(
        "POST /hooks/alertmanager HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// Reads one response and returns its status code.
async fn response(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(bad("connection closed in the headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().map_err(|_| bad("bad content-length"))?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(status)
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, u64>,
}

async fn sender(a: std::sync::Arc<Args>, c: u64, start: Instant) -> Seen {
    let mut seen = Seen::default();
    let stream = match TcpStream::connect(("127.0.0.1", a.port)).await {
        Ok(s) => s,
        Err(_) => {
            *seen.statuses.entry("connect_error".into()).or_default() += 1;
            return seen;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut conn = BufReader::new(stream);
    let deadline = start + Duration::from_secs_f64(a.max_seconds);
    let (mut due, interval, end) = match a.open_rate {
        Some(rate) => (
            start + Duration::from_secs_f64(c as f64 / rate),
            Some(Duration::from_secs_f64(a.senders as f64 / rate)),
            (start + Duration::from_secs_f64(a.seconds)).min(deadline),
        ),
        None => (start, None, deadline),
    };
    let mut n = 0u64;
    loop {
        let i = match interval {
            Some(_) if due >= end => break,
            Some(_) => a.first + c + n * a.senders,
            None if n >= a.per_sender || Instant::now() >= end => break,
            None => a.first + c * a.per_sender + n,
        };
        let req = request(i, &a.token);
        if interval.is_some() {
            sleep_until(due).await;
        }
        let from = if interval.is_some() {
            due
        } else {
            Instant::now()
        };
        let answer = async {
            conn.get_mut().write_all(&req).await?;
            response(&mut conn).await
        };
        match timeout(Duration::from_secs(30), answer).await {
            Ok(Ok(status)) => {
                seen.latencies.push(from.elapsed());
                *seen.statuses.entry(status.to_string()).or_default() += 1;
            }
            _ => {
                *seen.statuses.entry("error".into()).or_default() += 1;
                break;
            }
        }
        n += 1;
        if let Some(step) = interval {
            due += step;
        }
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let a = match args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("serve_load: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("serve_load: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let (elapsed, mut seen) = runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..a.senders)
            .map(|c| tokio::spawn(sender(a.clone(), c, start)))
            .collect();
        let mut all = Seen::default();
        for t in tasks {
            if let Ok(s) = t.await {
                all.latencies.extend(s.latencies);
                for (k, v) in s.statuses {
                    *all.statuses.entry(k).or_default() += v;
                }
            }
        }
        (start.elapsed(), all)
    });
    seen.latencies.sort();
    let l = &seen.latencies;
    let statuses: Vec<String> = seen
        .statuses
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!(
        "{{\"elapsed\":{:.4},\"requests\":{},\"statuses\":{{{}}},\"p50\":{:.2},\"p90\":{:.2},\"p99\":{:.2},\"max\":{:.2}}}",
        elapsed.as_secs_f64(),
        l.len(),
        statuses.join(","),
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 100.0),
    );
}
