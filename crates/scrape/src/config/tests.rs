use super::*;

fn load(yaml: &str) -> Result<ScrapeConfigs, ConfigError> {
    ScrapeConfigs::from_yaml(yaml)
}

fn err(yaml: &str) -> String {
    match load(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn durations() {
    for (text, ms, shown) in [
        ("15s", 15_000, "15s"),
        ("1m30s", 90_000, "1m30s"),
        ("500ms", 500, "500ms"),
        ("1h", 3_600_000, "1h"),
        ("2d", 172_800_000, "2d"),
        ("1w", 604_800_000, "1w"),
        ("0s", 0, "0s"),
        ("1m0s", 60_000, "1m"),
    ] {
        let d = PromDuration::parse(text).expect(text);
        assert_eq!(d.0.as_millis(), ms, "{text}");
        assert_eq!(d.to_string(), shown, "{text}");
    }
    for bad in ["", "15", "s", "1x", "1s1m", "1m1m", "-1s", "1.5s"] {
        assert!(PromDuration::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn a_full_prometheus_yml_loads_with_defaults() {
    let cfg = load(
        r#"
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels: {region: eu}
rule_files: [rules.yml]
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['localhost:9100', 'db:9100']
        labels: {env: prod}
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+):.*'
        target_label: host
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
  - job_name: app
    scrape_interval: 5s
    metrics_path: /actuator/prometheus
    scheme: https
    params: {module: [http_2xx]}
    honor_labels: true
    honor_timestamps: false
    basic_auth: {username: u, password: hunter2}
    tls_config: {ca_file: /etc/ca.pem, insecure_skip_verify: true, server_name: app.local}
    sample_limit: 1000
    label_limit: 30
    label_name_length_limit: 100
    label_value_length_limit: 200
    file_sd_configs:
      - files: ['/etc/targets/*.json']
    http_sd_configs:
      - url: http://sd.local/targets
        refresh_interval: 30s
    dns_sd_configs:
      - names: [_metrics._tcp.example.com]
      - names: [api.example.com]
        type: A
        port: 8080
  - job_name: bearer
    authorization: {credentials: tok}
    static_configs: [{targets: ['x:1']}]
"#,
    )
    .expect("loads");
    assert_eq!(cfg.global.scrape_interval.to_string(), "15s");
    assert_eq!(cfg.global.external_labels.get("region").map(String::as_str), Some("eu"));
    let node = &cfg.scrape_configs[0];
    assert_eq!((node.interval().as_secs(), node.timeout().as_secs()), (15, 10));
    assert_eq!((node.metrics_path.as_str(), node.scheme.as_str()), ("/metrics", "http"));
    assert!(node.honor_timestamps && !node.honor_labels);
    let app = &cfg.scrape_configs[1];
    // The global 10s timeout is capped at the job's 5s interval.
    assert_eq!((app.interval().as_secs(), app.timeout().as_secs()), (5, 5));
    assert_eq!(app.params.get("module"), Some(&vec!["http_2xx".to_string()]));
    assert_eq!(app.file_sd_configs[0].refresh_interval.to_string(), "5m");
    assert_eq!(app.dns_sd_configs[0].record_type, DnsRecordType::Srv);
    assert_eq!(app.dns_sd_configs[1].record_type, DnsRecordType::A);
    let bearer = &cfg.scrape_configs[2];
    assert_eq!(
        bearer.authorization.as_ref().map(|a| a.auth_type.as_str()),
        Some("Bearer")
    );
}

#[test]
fn secrets_are_redacted() {
    let cfg = load(
        r#"
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: hunter2}
  - job_name: b
    authorization: {credentials: s3cr3t-token}
  - job_name: c
    bearer_token: legacy-token
"#,
    )
    .expect("loads");
    let shown = cfg.redacted_yaml();
    for secret in ["hunter2", "s3cr3t-token", "legacy-token"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
        assert!(!format!("{cfg:?}").contains(secret), "{secret} leaked in Debug");
    }
    assert!(shown.contains("<secret>"));
    assert!(shown.contains("username: u"));
}

#[test]
fn validation_errors_name_job_and_field() {
    let cases = [
        (
            "scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 10s}]",
            r#"scrape_configs: job "a": scrape_timeout: scrape timeout 10s greater than scrape interval 5s"#,
        ),
        (
            "scrape_configs: [{job_name: a}, {job_name: a}]",
            r#"scrape_configs: found multiple scrape configs with job name "a""#,
        ),
        (
            "scrape_configs: [{job_name: a, scheme: ftp}]",
            r#"scrape_configs: job "a": scheme: "ftp" is not http or https"#,
        ),
        (
            "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1/metrics']}]}]",
            r#"scrape_configs: job "a": static_configs[0].targets: "http://x:1/metrics" is not a valid host:port address"#,
        ),
        (
            "scrape_configs: [{job_name: a, basic_auth: {username: u, password: p}, authorization: {credentials: c}}]",
            r#"scrape_configs: job "a": authorization: at most one of basic_auth, authorization and bearer_token(_file) may be set"#,
        ),
        (
            "scrape_configs: [{job_name: a, dns_sd_configs: [{names: [x], type: A}]}]",
            r#"scrape_configs: job "a": dns_sd_configs[0].port: a port is required for A and AAAA records"#,
        ),
        (
            "scrape_configs: [{job_name: a, file_sd_configs: [{files: [targets.txt]}]}]",
            r#"scrape_configs: job "a": file_sd_configs[0].files: "targets.txt": only .json, .yml and .yaml files are supported"#,
        ),
        (
            "scrape_configs: [{job_name: a, relabel_configs: [{action: replace, source_labels: [x]}]}]",
            r#"scrape_configs: job "a": relabel_configs[0]: relabel action Replace: target_label is required"#,
        ),
        (
            "global: {scrape_interval: 5s, scrape_timeout: 6s}",
            "global: scrape_timeout: global scrape timeout 6s greater than scrape interval 5s",
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(err(yaml), expected, "{yaml}");
    }
}

#[test]
fn yaml_errors_carry_the_line() {
    let e = err("scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n");
    assert!(e.contains("unknown field `scrape_intervall`"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    let e = err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5 seconds\n");
    assert!(e.contains("not a valid duration string"), "{e}");
    let e = err("scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: []\n");
    assert!(e.contains("unknown field `kubernetes_sd_configs`"), "{e}");
}

#[test]
fn from_values_matches_from_yaml() {
    let text =
        "global: {scrape_interval: 20s}\nscrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]\n";
    let doc: serde_norway::Value = serde_norway::from_str(text).expect("yaml");
    let from_values = ScrapeConfigs::from_values(doc.get("global"), doc.get("scrape_configs")).expect("from values");
    assert_eq!(from_values, load(text).expect("from yaml"));
    assert_eq!(
        ScrapeConfigs::from_values(None, None).expect("empty"),
        ScrapeConfigs::default()
    );
}
