//! The agent's host metrics against the real node_exporter on this host, at
//! the same moment: for every family the agent claims, the same metric names
//! and label sets on both sides, and values within tolerance.
//!
//! node_exporter is scraped just before and just after our collection, so a
//! counter of ours must lie between its two readings (and a gauge near that
//! range); filesystem sizes and inode totals must be equal. node_exporter is
//! started with our exclusion regexes (upstream's current defaults; the
//! Debian 1.5.0 package ships older ones).
//!
//! Needs `/usr/bin/prometheus-node-exporter` (`apt-get install prometheus-node-exporter`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::collect::{
    HostCollector, DEFAULT_DISK_DEVICE_EXCLUDE, DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE,
};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

type Series = (String, BTreeMap<String, String>);

struct NodeExporter {
    child: Child,
    port: u16,
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeExporter {
    fn start() -> NodeExporter {
        assert!(
            std::path::Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.vmstat",
                "--collector.filesystem",
                "--collector.diskstats",
                "--collector.netdev",
                "--collector.loadavg",
                "--collector.stat",
                "--collector.time",
                "--collector.uname",
            ])
            .arg(format!(
                "--collector.filesystem.mount-points-exclude={DEFAULT_MOUNT_POINTS_EXCLUDE}"
            ))
            .arg(format!(
                "--collector.filesystem.fs-types-exclude={DEFAULT_FS_TYPES_EXCLUDE}"
            ))
            .arg(format!(
                "--collector.diskstats.device-exclude={DEFAULT_DISK_DEVICE_EXCLUDE}"
            ))
            // Upstream excludes no network device; Debian's build excludes `lo`.
            .arg("--collector.netdev.device-exclude=^$")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NODE_EXPORTER}: {e}"));
        let ne = NodeExporter { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return ne;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node_exporter did not listen on port {port}");
    }

    fn scrape(&self) -> BTreeMap<Series, f64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
        parse_text_format(body)
    }
}

/// A minimal reader of the Prometheus text format: `name{l="v",…} value`.
fn parse_text_format(body: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in body.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name_end, labels, rest) = match line.find('{') {
            Some(open) => {
                let (labels, after) = parse_labels(&line[open + 1..]);
                (open, labels, after)
            }
            None => {
                let sp = line.find(' ').unwrap();
                (sp, BTreeMap::new(), &line[sp..])
            }
        };
        let value_text = rest.split_whitespace().next().unwrap();
        let value = match value_text {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.insert((line[..name_end].to_string(), labels), value);
    }
    out
}

/// Parses `l="v",…}` and returns the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return (labels, rest);
        }
        let eq = s.find('=').unwrap();
        let name = s[..eq].to_string();
        let mut chars = s[eq + 2..].char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next().expect("unterminated label value");
            match c {
                '"' => break eq + 2 + i + 1,
                '\\' => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.insert(name, value);
        s = &s[end..];
    }
}

/// The families the agent claims to produce exactly as node_exporter does.
fn claimed(name: &str) -> bool {
    const EXACT: [&str; 23] = [
        "node_cpu_seconds_total",
        "node_cpu_guest_seconds_total",
        "node_filesystem_size_bytes",
        "node_filesystem_free_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_readonly",
        "node_filesystem_device_error",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_boot_time_seconds",
        "node_time_seconds",
        "node_context_switches_total",
        "node_forks_total",
        "node_intr_total",
        "node_procs_running",
        "node_procs_blocked",
        "node_uname_info",
        "node_network_receive_nohandler_total",
        "node_memory_MemTotal_bytes",
        "node_vmstat_pgfault",
    ];
    EXACT.contains(&name)
        || name.starts_with("node_memory_")
        || name.starts_with("node_vmstat_")
        || (name.starts_with("node_disk_") && name != "node_disk_info")
        || ((name.starts_with("node_network_receive_") || name.starts_with("node_network_transmit_"))
            && name.ends_with("_total"))
}

fn is_counter(name: &str) -> bool {
    name.ends_with("_total") || name.starts_with("node_vmstat_")
}

/// The absolute slack allowed around node_exporter's two readings of a gauge.
fn gauge_slack(name: &str) -> f64 {
    match name {
        n if n.starts_with("node_procs_") => 16.0,
        n if n.starts_with("node_load") => 0.5,
        n if n.starts_with("node_memory_HugePages") => 0.0,
        n if n.starts_with("node_memory_") || n.starts_with("node_filesystem_") => (64 << 20) as f64,
        "node_time_seconds" => 0.01,
        _ => 1.0,
    }
}

#[test]
fn host_metrics_match_node_exporter() {
    let ne = NodeExporter::start();
    let mut collector = HostCollector::new();
    let before = ne.scrape();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ours: BTreeMap<Series, f64> = collector
        .collect(now_ms)
        .into_iter()
        .map(|(labels, sample)| {
            let name = labels.metric_name().unwrap().to_string();
            let rest = labels
                .without_metric_name()
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            ((name, rest), sample.v)
        })
        .filter(|((name, _), _)| !name.starts_with("node_scrape_collector_"))
        .collect();
    let after = ne.scrape();

    // Not a vacuous comparison: every subsystem produced series.
    for family in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_vmstat_pgfault",
        "node_filesystem_avail_bytes",
        "node_disk_read_bytes_total",
        "node_network_receive_bytes_total",
        "node_load1",
        "node_boot_time_seconds",
        "node_procs_running",
        "node_time_seconds",
        "node_uname_info",
    ] {
        let n = ours.keys().filter(|(name, _)| name == family).count();
        eprintln!("{family}: {n} series");
        assert!(n > 0, "we produced no {family}");
    }

    // Names and label sets: equal on both sides for every claimed family.
    let ours_keys: BTreeSet<&Series> = ours.keys().collect();
    let theirs_keys: BTreeSet<&Series> = before.keys().filter(|(name, _)| claimed(name)).collect();
    let unclaimed: Vec<&&Series> = ours_keys.iter().filter(|(name, _)| !claimed(name)).collect();
    assert!(
        unclaimed.is_empty(),
        "we emit series outside the claimed families: {unclaimed:?}"
    );
    let only_ours: Vec<_> = ours_keys.difference(&theirs_keys).collect();
    let only_theirs: Vec<_> = theirs_keys.difference(&ours_keys).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "series differ\nonly ours: {only_ours:#?}\nonly node_exporter's: {only_theirs:#?}"
    );

    // Values.
    let mut failures = Vec::new();
    let mut families = BTreeSet::new();
    for (series, &v) in &ours {
        let name = series.0.as_str();
        families.insert(name);
        let (b, a) = (before[series], after.get(series).copied().unwrap_or(before[series]));
        let ok = match name {
            "node_filesystem_size_bytes"
            | "node_filesystem_files"
            | "node_boot_time_seconds"
            | "node_uname_info"
            | "node_filesystem_readonly"
            | "node_filesystem_device_error" => v == b && v == a,
            n if n.starts_with("node_memory_HugePages") || n == "node_memory_MemTotal_bytes" => v == b,
            n if is_counter(n) => {
                // Read between node_exporter's two scrapes; tiny float slack for unit conversions.
                let eps = 1e-9 * b.abs().max(1.0);
                v >= b - eps && v <= a + eps
            }
            n => {
                let (lo, hi) = (b.min(a), b.max(a));
                let slack = 0.05 * lo.abs().max(hi.abs()) + gauge_slack(n);
                v >= lo - slack && v <= hi + slack
            }
        };
        if !ok {
            failures.push(format!("{series:?}: ours {v}, node_exporter {b} then {a}"));
        }
    }
    assert!(failures.is_empty(), "values out of tolerance:\n{}", failures.join("\n"));
    eprintln!(
        "compared {} series in {} metric names with node_exporter: names, labels and values agree",
        ours.len(),
        families.len()
    );
}

#[test]
fn text_format_reader_handles_escapes() {
    let parsed = parse_text_format("# HELP x y\nx{a=\"b\\\"c\",d=\"e f\"} 1.5\ny 2\n");
    let labels: BTreeMap<String, String> = [("a".into(), "b\"c".into()), ("d".into(), "e f".into())].into();
    assert_eq!(parsed[&("x".to_string(), labels)], 1.5);
    assert_eq!(parsed[&("y".to_string(), BTreeMap::new())], 2.0);
}
