//! A deterministic, node_exporter-like workload: `H` hosts with ~330 series each, scraped every
//! 15 s, with counters and gauges that behave the way real host metrics do.
//!
//! Every series owns a small RNG seeded from `(seed, host, series index)`, so values depend only
//! on the seed and the number of steps taken, never on the order in which hosts are generated:
//! shards of hosts can be produced on different threads, and all systems get identical data.
//!
//! The behaviours modelled (they decide how well a TSDB compresses):
//! - `node_cpu_seconds_total{cpu,mode}`: float counters rounded to 2 decimals, `idle` growing
//!   ~15 s per scrape, `user`/`system` by a few seconds, rarely-moving modes (`steal`, `nice`);
//! - `node_network_*_total{device}`, `node_disk_*_total{device}`: integer counters growing at
//!   varying rates (bursty), with an occasional reset (a host reboot);
//! - `node_memory_*_bytes`: gauges in multiples of 4 KiB, some constant (`MemTotal`);
//! - `node_filesystem_{size,free,avail,files,files_free}_bytes{device,fstype,mountpoint}`:
//!   constant or slowly drifting;
//! - `node_load1/5/15`: 2-decimal random walks;
//! - `node_systemd_unit_state{name,state}` and `node_scrape_collector_success`: 0/1 gauges;
//! - `node_scrape_collector_duration_seconds`, `scrape_duration_seconds`: full-precision noise;
//! - `node_time_seconds`: the scrape time with sub-millisecond jitter; `up` and the scrape
//!   meta-series that Prometheus adds;
//! - optionally ([`Host::with_histograms`], off for `ingest` so its numbers stay comparable):
//!   a classic histogram `http_request_duration_seconds_{bucket,sum,count}{handler,method}`
//!   with 12 buckets per handler. All series of one handler share their RNG sequence, so the
//!   buckets stay cumulative (`le` ascending never decreases) and `+Inf` equals `_count`.

use wire::prompb;

/// The scrape interval of the workload, in milliseconds.
pub(crate) const INTERVAL_MS: i64 = 15_000;

/// splitmix64: tiny, fast, and good enough for synthetic metrics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Creates a generator from a seed.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform float in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut r = Rng::new(seed ^ a.wrapping_mul(0x1000_0000_01B3) ^ b.wrapping_mul(0x9E37_79B9));
    r.next_u64()
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// How one series evolves from scrape to scrape.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A float counter rounded to 2 decimals growing by `rate ± 30 %` per scrape.
    FloatCounter { rate: f64 },
    /// An integer counter with a bursty rate and a rare reset.
    IntCounter { rate: f64, burst: f64 },
    /// An integer gauge moving by multiples of `quantum` around its start value.
    StepGauge { quantum: f64, p_move: f64, max_steps: f64 },
    /// A value that never changes.
    Constant,
    /// A 2-decimal random walk kept in `[0, cap]`.
    Load { cap: f64 },
    /// A 0/1 gauge that flips with probability `p_flip`.
    Bool { p_flip: f64 },
    /// Random durations in `[lo, hi)` seconds, measured by the exporter. Go
    /// exporters compute them from a `time.Duration`, an integer count of
    /// nanoseconds, so values are whole nanoseconds (`0.000215853`), not
    /// arbitrary 53-bit fractions.
    Noise { lo: f64, hi: f64 },
    /// The scrape time in seconds with sub-millisecond jitter.
    Clock,
    /// A classic histogram bucket (or `_count` with `frac` 1, or `_sum` with `sum_mean` set):
    /// grows by `round(requests * frac)` per scrape, where `requests` is drawn from the RNG
    /// shared by all series of the handler.
    Histogram {
        rate: f64,
        frac: f64,
        sum_mean: Option<f64>,
    },
}

/// The `le` bounds of the workload's classic histogram (`+Inf` is added).
pub(crate) const HISTOGRAM_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const HANDLERS: [&str; 16] = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/write",
    "/metrics",
    "/login",
    "/logout",
    "/cart",
    "/checkout",
    "/search",
    "/products",
    "/orders",
    "/users",
    "/health",
    "/static",
];

/// The static description of one series of a host.
#[derive(Clone, Debug)]
pub(crate) struct SeriesDef {
    /// Labels in protobuf form, sorted by name, `__name__` included.
    pub(crate) labels: Vec<prompb::Label>,
    kind: Kind,
    start: f64,
    /// Seeds the series' RNG instead of its index (series sharing a key draw the same values).
    rng_key: Option<u64>,
}

/// The mutable state of one series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeriesState {
    rng: Rng,
    value: f64,
    /// Current rate multiplier for bursty counters.
    level: f64,
}

/// The series of one host and their states.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    /// The series definitions, in a fixed order.
    pub(crate) series: Vec<SeriesDef>,
    /// One state per series.
    pub(crate) states: Vec<SeriesState>,
}

struct Builder {
    instance: String,
    defs: Vec<SeriesDef>,
}

impl Builder {
    fn add(&mut self, name: &str, extra: &[(&str, &str)], kind: Kind, start: f64) {
        let mut labels: Vec<prompb::Label> = vec![
            prompb::Label {
                name: "__name__".into(),
                value: name.into(),
            },
            prompb::Label {
                name: "instance".into(),
                value: self.instance.clone(),
            },
            prompb::Label {
                name: "job".into(),
                value: "node".into(),
            },
        ];
        for (n, v) in extra {
            labels.push(prompb::Label {
                name: (*n).into(),
                value: (*v).into(),
            });
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        self.defs.push(SeriesDef {
            labels,
            kind,
            start,
            rng_key: None,
        });
    }
}

const CPU_MODES: [(&str, f64); 8] = [
    ("idle", 13.5),
    ("iowait", 0.05),
    ("irq", 0.0),
    ("nice", 0.002),
    ("softirq", 0.03),
    ("steal", 0.0),
    ("system", 0.4),
    ("user", 1.1),
];
const NET_DEVICES: [&str; 4] = ["docker0", "eth0", "eth1", "lo"];
const DISKS: [&str; 4] = ["dm-0", "nvme0n1", "sda", "sdb"];
const MOUNTS: [(&str, &str, &str); 6] = [
    ("/dev/nvme0n1p2", "ext4", "/"),
    ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
    ("/dev/sda1", "xfs", "/var/lib/docker"),
    ("/dev/sdb1", "ext4", "/data"),
    ("tmpfs", "tmpfs", "/run"),
    ("tmpfs", "tmpfs", "/dev/shm"),
];
const MEMORY: [&str; 40] = [
    "Active",
    "Active_anon",
    "Active_file",
    "AnonHugePages",
    "AnonPages",
    "Bounce",
    "Buffers",
    "Cached",
    "CommitLimit",
    "Committed_AS",
    "DirectMap1G",
    "DirectMap2M",
    "DirectMap4k",
    "Dirty",
    "HardwareCorrupted",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Total",
    "Hugepagesize",
    "Inactive",
    "Inactive_anon",
    "Inactive_file",
    "KernelStack",
    "Mapped",
    "MemAvailable",
    "MemFree",
    "MemTotal",
    "Mlocked",
    "NFS_Unstable",
    "PageTables",
    "SReclaimable",
    "SUnreclaim",
    "Shmem",
    "Slab",
    "SwapCached",
    "SwapFree",
    "SwapTotal",
    "Unevictable",
    "VmallocUsed",
    "Writeback",
];
const UNITS: [&str; 8] = [
    "containerd.service",
    "cron.service",
    "docker.service",
    "node_exporter.service",
    "nginx.service",
    "postgresql.service",
    "ssh.service",
    "systemd-journald.service",
];
const UNIT_STATES: [&str; 5] = ["activating", "active", "deactivating", "failed", "inactive"];
const COLLECTORS: [&str; 15] = [
    "arp",
    "bcache",
    "conntrack",
    "cpu",
    "diskstats",
    "filefd",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "stat",
    "systemd",
    "time",
    "vmstat",
];
const NETSTAT: [&str; 16] = [
    "node_netstat_Icmp_InErrors",
    "node_netstat_Icmp_InMsgs",
    "node_netstat_Icmp_OutMsgs",
    "node_netstat_Ip_Forwarding",
    "node_netstat_IpExt_InOctets",
    "node_netstat_IpExt_OutOctets",
    "node_netstat_Tcp_ActiveOpens",
    "node_netstat_Tcp_CurrEstab",
    "node_netstat_Tcp_InErrs",
    "node_netstat_Tcp_InSegs",
    "node_netstat_Tcp_OutSegs",
    "node_netstat_Tcp_PassiveOpens",
    "node_netstat_Tcp_RetransSegs",
    "node_netstat_Udp_InDatagrams",
    "node_netstat_Udp_NoPorts",
    "node_netstat_Udp_OutDatagrams",
];
const VMSTAT: [&str; 8] = [
    "node_vmstat_oom_kill",
    "node_vmstat_pgfault",
    "node_vmstat_pgmajfault",
    "node_vmstat_pgpgin",
    "node_vmstat_pgpgout",
    "node_vmstat_pswpin",
    "node_vmstat_pswpout",
    "node_vmstat_numa_hit",
];

impl Host {
    /// Builds host number `host` of the workload seeded with `seed`.
    pub(crate) fn new(seed: u64, host: u64) -> Host {
        Host::with_histograms(seed, host, 0)
    }

    /// Like [`Host::new`], plus a classic histogram with `handlers` handlers (at most 16) of
    /// 14 series each (12 buckets, `_sum`, `_count`).
    pub(crate) fn with_histograms(seed: u64, host: u64, handlers: usize) -> Host {
        let mut r = Rng::new(mix(seed, host, 0xC0FFEE));
        let mut b = Builder {
            instance: format!("host-{host}:9100"),
            defs: Vec::with_capacity(340),
        };
        let busy = r.range(0.05, 1.0); // how loaded this host is
        let gib = 1024.0 * 1024.0 * 1024.0;
        let mem_total = [8.0, 16.0, 32.0, 64.0][(r.next_u64() % 4) as usize] * gib;

        for cpu in 0..8 {
            let cpu_s = cpu.to_string();
            for (mode, rate) in CPU_MODES {
                let rate = if mode == "idle" {
                    15.0 - 1.5 * busy
                } else {
                    rate * busy * 2.0
                };
                let start = round_to(r.range(1e5, 5e6) * rate.max(0.001), 2);
                b.add(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu_s), ("mode", mode)],
                    Kind::FloatCounter { rate },
                    start,
                );
            }
        }
        for dev in NET_DEVICES {
            let scale = if dev == "eth0" { 1.0 } else { 0.05 };
            for (what, per_scrape) in [
                ("receive_bytes", 2e6),
                ("transmit_bytes", 1e6),
                ("receive_packets", 2e3),
                ("transmit_packets", 1.5e3),
                ("receive_errs", 0.001),
                ("transmit_errs", 0.0005),
                ("receive_drop", 0.01),
                ("transmit_drop", 0.0),
            ] {
                let rate = per_scrape * scale * busy;
                b.add(
                    &format!("node_network_{what}_total"),
                    &[("device", dev)],
                    Kind::IntCounter { rate, burst: 0.8 },
                    (r.range(1e3, 1e6) * rate.max(1.0)).round(),
                );
            }
        }
        for name in MEMORY {
            let (kind, start) = match name {
                "MemTotal" | "SwapTotal" | "CommitLimit" | "Hugepagesize" | "DirectMap1G" | "DirectMap2M"
                | "DirectMap4k" => (
                    Kind::Constant,
                    (mem_total * r.range(0.0, 0.5) / 4096.0).round() * 4096.0,
                ),
                "HugePages_Free" | "HugePages_Rsvd" | "HugePages_Total" | "HardwareCorrupted" | "Bounce"
                | "NFS_Unstable" | "Mlocked" => (Kind::Constant, 0.0),
                "Dirty" | "Writeback" => (
                    Kind::StepGauge {
                        quantum: 4096.0,
                        p_move: 0.9,
                        max_steps: 2000.0,
                    },
                    4096.0 * (r.next_u64() % 5000) as f64,
                ),
                _ => (
                    Kind::StepGauge {
                        quantum: 4096.0,
                        p_move: 0.6,
                        max_steps: 300.0,
                    },
                    (mem_total * r.range(0.01, 0.4) / 4096.0).round() * 4096.0,
                ),
            };
            b.add(&format!("node_memory_{name}_bytes"), &[], kind, start);
        }
        for (device, fstype, mountpoint) in MOUNTS {
            let size = (r.range(1.0, 2000.0) * gib / 4096.0).round() * 4096.0;
            let free = (size * r.range(0.05, 0.9) / 4096.0).round() * 4096.0;
            let growing = Kind::StepGauge {
                quantum: 4096.0,
                p_move: if fstype == "tmpfs" { 0.05 } else { 0.5 },
                max_steps: 500.0,
            };
            let inodes = (size / 16384.0).round();
            let labels = [("device", device), ("fstype", fstype), ("mountpoint", mountpoint)];
            b.add("node_filesystem_size_bytes", &labels, Kind::Constant, size);
            b.add("node_filesystem_free_bytes", &labels, growing, free);
            b.add("node_filesystem_avail_bytes", &labels, growing, (free * 0.95).round());
            b.add("node_filesystem_files", &labels, Kind::Constant, inodes);
            b.add(
                "node_filesystem_files_free",
                &labels,
                Kind::StepGauge {
                    quantum: 1.0,
                    p_move: 0.3,
                    max_steps: 50.0,
                },
                (inodes * 0.8).round(),
            );
            b.add("node_filesystem_readonly", &labels, Kind::Constant, 0.0);
        }
        for (name, cap) in [("node_load1", 16.0), ("node_load5", 12.0), ("node_load15", 10.0)] {
            b.add(name, &[], Kind::Load { cap }, round_to(busy * 4.0, 2));
        }
        for dev in DISKS {
            let scale = if dev == "sdb" { 0.1 } else { 1.0 } * busy;
            for (what, rate, float) in [
                ("reads_completed_total", 50.0, false),
                ("writes_completed_total", 200.0, false),
                ("read_bytes_total", 2e6, false),
                ("written_bytes_total", 5e6, false),
                ("io_time_seconds_total", 1.5, true),
                ("read_time_seconds_total", 0.3, true),
                ("write_time_seconds_total", 1.2, true),
                ("io_now", 0.0, false),
            ] {
                let rate = rate * scale;
                let (kind, start) = if what == "io_now" {
                    (
                        Kind::StepGauge {
                            quantum: 1.0,
                            p_move: 0.2,
                            max_steps: 3.0,
                        },
                        0.0,
                    )
                } else if float {
                    (Kind::FloatCounter { rate }, round_to(r.range(1e3, 1e6) * rate, 2))
                } else {
                    (
                        Kind::IntCounter { rate, burst: 1.5 },
                        (r.range(1e3, 1e6) * rate).round(),
                    )
                };
                b.add(&format!("node_disk_{what}"), &[("device", dev)], kind, start);
            }
        }
        for unit in UNITS {
            let active = if unit == "nginx.service" && r.chance(0.3) {
                "failed"
            } else {
                "active"
            };
            for state in UNIT_STATES {
                let v = if state == active { 1.0 } else { 0.0 };
                b.add(
                    "node_systemd_unit_state",
                    &[("name", unit), ("state", state), ("type", "simple")],
                    Kind::Bool { p_flip: 0.0002 },
                    v,
                );
            }
        }
        for name in NETSTAT {
            b.add(
                name,
                &[],
                Kind::IntCounter {
                    rate: r.range(0.0, 500.0) * busy,
                    burst: 1.0,
                },
                (r.range(1e4, 1e8)).round(),
            );
        }
        for name in VMSTAT {
            b.add(
                name,
                &[],
                Kind::IntCounter {
                    rate: r.range(0.0, 2e4) * busy,
                    burst: 1.0,
                },
                (r.range(1e4, 1e9)).round(),
            );
        }
        for (name, rate) in [
            ("node_context_switches_total", 3e4),
            ("node_intr_total", 2e4),
            ("node_forks_total", 40.0),
        ] {
            b.add(
                name,
                &[],
                Kind::IntCounter {
                    rate: rate * busy,
                    burst: 0.5,
                },
                (r.range(1e6, 1e10)).round(),
            );
        }
        let step = |max_steps: f64| Kind::StepGauge {
            quantum: 1.0,
            p_move: 0.5,
            max_steps,
        };
        b.add("node_procs_running", &[], step(6.0), 2.0);
        b.add("node_procs_blocked", &[], step(1.0), 0.0);
        b.add("node_entropy_available_bits", &[], step(100.0), 3500.0);
        b.add("node_filefd_allocated", &[], step(500.0), (r.range(1e3, 3e4)).round());
        b.add("node_filefd_maximum", &[], Kind::Constant, 9_223_372_036_854_775_807.0);
        b.add(
            "node_sockstat_TCP_inuse",
            &[],
            step(50.0),
            (r.range(10.0, 900.0)).round(),
        );
        b.add(
            "node_sockstat_sockets_used",
            &[],
            step(80.0),
            (r.range(100.0, 2000.0)).round(),
        );
        b.add(
            "node_boot_time_seconds",
            &[],
            Kind::Constant,
            1.7e9 - (r.next_u64() % 10_000_000) as f64,
        );
        b.add("node_time_seconds", &[], Kind::Clock, 0.0);
        for c in COLLECTORS {
            let base = r.range(0.0001, 0.05);
            b.add(
                "node_scrape_collector_duration_seconds",
                &[("collector", c)],
                Kind::Noise {
                    lo: base * 0.5,
                    hi: base * 1.5,
                },
                base,
            );
            b.add(
                "node_scrape_collector_success",
                &[("collector", c)],
                Kind::Constant,
                1.0,
            );
        }
        b.add("up", &[], Kind::Constant, 1.0);
        b.add("scrape_duration_seconds", &[], Kind::Noise { lo: 0.02, hi: 0.09 }, 0.05);
        let n = b.defs.len() as f64 + 4.0;
        for name in ["scrape_samples_scraped", "scrape_samples_post_metric_relabeling"] {
            b.add(name, &[], Kind::Constant, n);
        }
        b.add("scrape_series_added", &[], Kind::Constant, 0.0);
        for (hi, handler) in HANDLERS.iter().take(handlers).enumerate() {
            let method = if handler.contains("write") || *handler == "/checkout" || *handler == "/login" {
                "POST"
            } else {
                "GET"
            };
            let rate = r.range(1.0, 200.0) * busy; // requests per scrape
            let median = r.range(0.005, 0.4); // log-logistic latency distribution
            let start = (r.range(1e3, 1e6) * rate).round();
            let key = 1_000_000 + hi as u64;
            let labels = [("handler", *handler), ("method", method)];
            let add = |b: &mut Builder, name: &str, le: Option<&str>, frac: f64, sum_mean: Option<f64>| {
                let mut l = labels.to_vec();
                if let Some(le) = le {
                    l.push(("le", le));
                }
                let start = match sum_mean {
                    Some(m) => round_to(start * m, 3),
                    None => (start * frac).round(),
                };
                b.add(name, &l, Kind::Histogram { rate, frac, sum_mean }, start);
                b.defs.last_mut().expect("just added").rng_key = Some(key);
            };
            for le in HISTOGRAM_BOUNDS {
                let frac = 1.0 / (1.0 + (median / le).powi(2));
                add(
                    &mut b,
                    "http_request_duration_seconds_bucket",
                    Some(&le.to_string()),
                    frac,
                    None,
                );
            }
            add(&mut b, "http_request_duration_seconds_bucket", Some("+Inf"), 1.0, None);
            add(&mut b, "http_request_duration_seconds_count", None, 1.0, None);
            add(
                &mut b,
                "http_request_duration_seconds_sum",
                None,
                1.0,
                Some(median * 1.3),
            );
        }

        let states = (0..b.defs.len())
            .map(|i| SeriesState {
                rng: Rng::new(mix(seed, host, b.defs[i].rng_key.unwrap_or(i as u64 + 1))),
                value: b.defs[i].start,
                level: 1.0,
            })
            .collect();
        Host { series: b.defs, states }
    }

    /// Advances series `i` to scrape time `t_ms` and returns its value.
    pub(crate) fn step(&mut self, i: usize, t_ms: i64) -> f64 {
        let def = &self.series[i];
        let s = &mut self.states[i];
        let r = &mut s.rng;
        match def.kind {
            Kind::FloatCounter { rate } => {
                if rate > 0.0 {
                    s.value = round_to(s.value + rate * r.range(0.7, 1.3), 2);
                }
            }
            Kind::IntCounter { rate, burst } => {
                if r.chance(0.02) {
                    s.level = r.range(1.0 - burst.min(0.95), 1.0 + 3.0 * burst);
                }
                if r.chance(1.0 / 50_000.0) {
                    s.value = 0.0; // the host rebooted
                } else {
                    let inc = rate * s.level * r.range(0.5, 1.5);
                    // small rates move in whole steps now and then
                    s.value += if inc < 1.0 {
                        f64::from(u8::from(r.chance(inc)))
                    } else {
                        inc.round()
                    };
                }
            }
            Kind::StepGauge {
                quantum,
                p_move,
                max_steps,
            } => {
                if r.chance(p_move) {
                    let steps = (r.range(-1.0, 1.0) * max_steps).round();
                    s.value = (s.value + steps * quantum).max(0.0);
                }
            }
            Kind::Constant => {}
            Kind::Load { cap } => {
                s.value = round_to((s.value + r.range(-0.15, 0.15)).clamp(0.0, cap), 2);
            }
            Kind::Bool { p_flip } => {
                if r.chance(p_flip) {
                    s.value = 1.0 - s.value;
                }
            }
            Kind::Noise { lo, hi } => s.value = (r.range(lo, hi) * 1e9).round() / 1e9,
            Kind::Clock => s.value = (t_ms as f64 + r.range(0.0, 3.0)) / 1000.0,
            Kind::Histogram { rate, frac, sum_mean } => {
                let requests = (rate * r.range(0.5, 1.5)).round();
                s.value = match sum_mean {
                    Some(m) => round_to(s.value + requests * m * r.range(0.9, 1.1), 3),
                    None => s.value + (requests * frac).round(),
                };
            }
        }
        s.value
    }

    /// Appends, for every series, `timestamps.len()` consecutive samples as one protobuf series.
    pub(crate) fn append_series(&mut self, timestamps: &[i64], out: &mut Vec<prompb::TimeSeries>) {
        for i in 0..self.series.len() {
            let samples = timestamps
                .iter()
                .map(|&t| prompb::Sample {
                    value: self.step(i, t),
                    timestamp: t,
                })
                .collect();
            out.push(prompb::TimeSeries {
                labels: self.series[i].labels.clone(),
                samples,
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
        }
    }
}

/// The number of series per host (the same for every host).
pub(crate) fn series_per_host() -> usize {
    series_per_host_with(0)
}

/// The number of series per host with `handlers` histogram handlers.
pub(crate) fn series_per_host_with(handlers: usize) -> usize {
    Host::with_histograms(0, 0, handlers).series.len()
}

/// Encodes series as a snappy-compressed remote-write 1.0 body.
pub(crate) fn encode(series: Vec<prompb::TimeSeries>) -> anyhow::Result<Vec<u8>> {
    let req = prompb::WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    };
    wire::remote_write::encode_write_request(&req).map_err(|e| anyhow::anyhow!("encoding a write request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_node_like() {
        let mut a = Host::new(7, 3);
        let mut b = Host::new(7, 3);
        assert!(a.series.len() > 250 && a.series.len() < 400, "{}", a.series.len());
        let ts: Vec<i64> = (0..10).map(|i| 1_700_000_000_000 + i * INTERVAL_MS).collect();
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        a.append_series(&ts, &mut sa);
        b.append_series(&ts, &mut sb);
        assert_eq!(sa, sb);
        let up = sa.iter().find(|s| s.labels.iter().any(|l| l.value == "up")).unwrap();
        assert!(up.samples.iter().all(|s| s.value == 1.0));
        assert!(sa.iter().all(|s| s.labels.windows(2).all(|w| w[0].name < w[1].name)));
        let inst = &sa[0].labels.iter().find(|l| l.name == "instance").unwrap().value;
        assert_eq!(inst, "host-3:9100");
    }

    #[test]
    fn histogram_buckets_stay_cumulative() {
        let mut h = Host::with_histograms(7, 1, 2);
        assert_eq!(h.series.len(), Host::new(7, 1).series.len() + 28);
        let ts: Vec<i64> = (0..50).map(|i| 1_700_000_000_000 + i * INTERVAL_MS).collect();
        let mut out = Vec::new();
        h.append_series(&ts, &mut out);
        let handler_of = |s: &prompb::TimeSeries, want: &str| {
            s.labels
                .iter()
                .any(|l| l.name == "handler" && l.value == "/api/v1/query")
                && s.labels.iter().any(|l| l.value == want)
        };
        let buckets: Vec<_> = out
            .iter()
            .filter(|s| handler_of(s, "http_request_duration_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), 12);
        for t in 0..ts.len() {
            let vals: Vec<f64> = buckets.iter().map(|s| s.samples[t].value).collect();
            assert!(vals.windows(2).all(|w| w[0] <= w[1]), "{vals:?}");
            let count = out
                .iter()
                .find(|s| handler_of(s, "http_request_duration_seconds_count"))
                .unwrap();
            assert_eq!(count.samples[t].value, vals[11]);
        }
    }
}
