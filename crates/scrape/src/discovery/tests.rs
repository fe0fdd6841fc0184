use super::*;
use crate::config::ScrapeConfigs;

fn job(yaml: &str) -> ScrapeConfig {
    let mut cfgs = ScrapeConfigs::from_yaml(yaml).expect("config loads");
    cfgs.scrape_configs.remove(0)
}

fn render(l: &Labels) -> String {
    l.iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn static_targets_get_conventional_labels_and_relabeling() {
    let cfg = job(r#"
scrape_configs:
  - job_name: node
    scrape_interval: 15s
    params: {module: [a, b]}
    static_configs:
      - targets: ['web1:9100', 'db1:9100']
        labels: {env: prod}
    relabel_configs:
      - {source_labels: [__address__], regex: 'db.*', action: drop}
      - {source_labels: [__address__], regex: '([^:]+):.*', target_label: host}
      - {target_label: __param_module, replacement: c}
"#);
    let out = populate_targets(&cfg, &static_groups(&cfg));
    assert_eq!(out.active.len(), 1);
    let t = &out.active[0];
    assert_eq!(
        render(&t.discovered),
        "__address__=web1:9100,__metrics_path__=/metrics,__param_module=a,__scheme__=http,\
         __scrape_interval__=15s,__scrape_timeout__=10s,env=prod,job=node"
    );
    assert_eq!(render(&t.labels), "env=prod,host=web1,instance=web1:9100,job=node");
    assert_eq!(t.url, "http://web1:9100/metrics?module=c&module=b");
    assert_eq!((t.interval.as_secs(), t.timeout.as_secs()), (15, 10));
    assert_eq!(out.dropped.len(), 1);
    assert_eq!(out.dropped[0].0.get("__address__"), Some("db1:9100"));
}

#[test]
fn relabeled_interval_and_bad_timeout() {
    let cfg = job(r#"
scrape_configs:
  - job_name: j
    static_configs: [{targets: ['a:1', 'b:1']}]
    relabel_configs:
      - {source_labels: [__address__], regex: 'b:1', target_label: __scrape_timeout__, replacement: 2m}
"#);
    let out = populate_targets(&cfg, &static_groups(&cfg));
    assert_eq!(out.active.len(), 1);
    assert_eq!(
        out.dropped[0].1.as_deref(),
        Some("scrape timeout 2m greater than scrape interval 1m")
    );
}

#[test]
fn file_sd_reads_json_and_yaml_and_notices_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("a.json");
    std::fs::write(&json, r#"[{"targets": ["x:1"], "labels": {"team": "a"}}]"#).expect("write");
    std::fs::write(dir.path().join("b.yml"), "- targets: ['y:2']\n").expect("write");
    let mut w = FileWatcher::new(FileSdConfig {
        files: vec![
            format!("{}/*.json", dir.path().display()),
            format!("{}/*.yml", dir.path().display()),
        ],
        refresh_interval: crate::config::PromDuration(Duration::from_secs(300)),
    });
    let groups = w.poll().expect("first poll reads");
    let addrs: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.targets.iter().map(|t| t["__address__"].as_str()))
        .collect();
    assert_eq!(addrs, ["x:1", "y:2"]);
    assert_eq!(
        groups[0].labels.get("__meta_filepath"),
        Some(&json.display().to_string())
    );
    assert!(w.poll().is_none(), "nothing changed");
    // A broken file keeps its previous groups; a new file is picked up.
    std::fs::write(&json, "not json").expect("write");
    std::fs::write(dir.path().join("c.json"), r#"[{"targets": ["z:3"]}]"#).expect("write");
    let groups = w.poll().expect("changed");
    assert_eq!(groups.iter().map(|g| g.targets.len()).sum::<usize>(), 3);
}
