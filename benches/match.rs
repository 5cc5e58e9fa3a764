//! In-process benchmark: matching one incident against 10,000 playbooks.
//!
//! Run with `cargo bench --bench match`. Prints the median of the matching
//! itself (playbooks already loaded), which is what `irctl run` pays per alert.

use std::time::Instant;

use irctl::incident;
use irctl::matching;
use irctl::playbook::load::{SourceFile, from_sources};

fn main() {
    let sources: Vec<SourceFile> = (0..10_000)
        .map(|i| SourceFile {
            path: format!("p{i:05}.yaml"),
            bytes: Ok(format!(
                "version: 1\nname: p-{i}\ntitle: P{i}\npriority: {}\nmatch:\n  labels:\n    - alertname=\"Alert{i}\"\n    - severity=~\"critical|warning\"\n    - team!=\"none\"\ndrill:\n  incident: {{ title: d, labels: {{ alertname: Alert{i} }} }}\nsteps:\n  - id: a\n    shell: echo {{{{ incident.labels.instance }}}}\n",
                i % 10
            )
            .into_bytes()),
            provenance: Default::default(),
        })
        .collect();
    let set = from_sources(sources);
    assert_eq!(set.playbooks.len(), 10_000);
    let incident = incident::from_flags(
        &[
            ("alertname".into(), "Alert9999".into()),
            ("instance".into(), "db-1:9100".into()),
        ],
        Some("bench"),
        Some("critical"),
        irctl::clock::Clock::System,
    );
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let sel = matching::select(&set.playbooks, &incident);
        times.push(t.elapsed());
        assert_eq!(sel.winner(), Some("p-9999"));
    }
    times.sort();
    println!(
        "match 1 incident vs 10,000 playbooks: median {:.2} ms (min {:.2} ms, max {:.2} ms)",
        times[10].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[20].as_secs_f64() * 1000.0
    );
}
