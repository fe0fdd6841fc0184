use super::*;

/// Parses `a=1,b=2` into labels.
fn labels(s: &str) -> Labels {
    Labels::new(
        s.split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(n, v)| Label::new(n, v))
            .collect(),
    )
}

fn render(l: &Option<Labels>) -> String {
    match l {
        None => "dropped".to_string(),
        Some(l) => l
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Applies the YAML list `configs` to `input` and compares with `expected`
/// (`a=1,b=2` or `dropped`).
fn check(configs: &str, input: &str, expected: &str) {
    let cfgs: Vec<RelabelConfig> = serde_norway::from_str(configs).expect("test config parses");
    for c in &cfgs {
        c.validate().expect("test config is valid");
    }
    let got = render(&relabel(&labels(input), &cfgs));
    assert_eq!(got, expected, "configs:\n{configs}");
}

#[test]
fn replace() {
    let cfg = r#"
- source_labels: [a, b]
  regex: "(.*);(.*)"
  target_label: c
  replacement: "${1}-$2"
"#;
    check(cfg, "a=x,b=y", "a=x,b=y,c=x-y");
    // Defaults: regex (.*), replacement $1.
    check("- {source_labels: [a], target_label: d}", "a=x", "a=x,d=x");
    // No match: unchanged.
    check("- {source_labels: [a], regex: 'z+', target_label: d}", "a=x", "a=x");
    // Anchored: a partial match is no match.
    check("- {source_labels: [a], regex: 'x', target_label: d}", "a=xx", "a=xx");
    // An empty replacement deletes the target.
    check(
        "- {source_labels: [a], target_label: b, replacement: ''}",
        "a=x,b=y",
        "a=x",
    );
    // Templated target label; named groups.
    check(
        "- {source_labels: [a], regex: '(?P<n>[a-z]+)_(.*)', target_label: 'l_$n', replacement: '$2'}",
        "a=foo_bar",
        "a=foo_bar,l_foo=bar",
    );
    // Go's rule: `$1_x` names group `1_x`, which does not exist -> empty -> delete.
    check(
        "- {source_labels: [a], target_label: b, replacement: '$1_x'}",
        "a=v,b=old",
        "a=v",
    );
    check(
        "- {source_labels: [a], target_label: b, replacement: '$$1'}",
        "a=v",
        "a=v,b=$1",
    );
    // Missing source labels count as empty strings.
    check(
        "- {source_labels: [zz], regex: '', target_label: b, replacement: yes}",
        "a=v",
        "a=v,b=yes",
    );
}

#[test]
fn keep_and_drop() {
    check(
        "- {source_labels: [job], regex: 'node|api', action: keep}",
        "job=node",
        "job=node",
    );
    check(
        "- {source_labels: [job], regex: 'node|api', action: keep}",
        "job=db",
        "dropped",
    );
    check(
        "- {source_labels: [job], regex: 'node', action: drop}",
        "job=node",
        "dropped",
    );
    check(
        "- {source_labels: [job], regex: 'node', action: drop}",
        "job=nodes",
        "job=nodes",
    );
}

#[test]
fn keepequal_and_dropequal() {
    check(
        "- {source_labels: [a], target_label: b, action: keepequal}",
        "a=1,b=1",
        "a=1,b=1",
    );
    check(
        "- {source_labels: [a], target_label: b, action: keepequal}",
        "a=1,b=2",
        "dropped",
    );
    check(
        "- {source_labels: [a], target_label: b, action: dropequal}",
        "a=1,b=1",
        "dropped",
    );
    check(
        "- {source_labels: [a], target_label: b, action: dropequal}",
        "a=1,b=2",
        "a=1,b=2",
    );
}

#[test]
fn hashmod() {
    // Expected values read from the real Prometheus 2.42's /api/v1/targets
    // with the same relabel_configs: md5, last 8 bytes big-endian, modulo.
    check(
        "- {source_labels: [__address__], target_label: shard, modulus: 8, action: hashmod}",
        "__address__=localhost:9100",
        "__address__=localhost:9100,shard=7",
    );
    check(
        "- {source_labels: [a], target_label: h, modulus: 1000000, action: hashmod}",
        "a=foo",
        "a=foo,h=28696",
    );
}

#[test]
fn labelmap() {
    check(
        "- {regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}",
        "__meta_kubernetes_pod_label_app=web,__meta_kubernetes_pod_label_tier=fe,x=1",
        "__meta_kubernetes_pod_label_app=web,__meta_kubernetes_pod_label_tier=fe,app=web,tier=fe,x=1",
    );
    check(
        "- {regex: '(a)', replacement: 'copy_$1', action: labelmap}",
        "a=1,b=2",
        "a=1,b=2,copy_a=1",
    );
}

#[test]
fn labeldrop_and_labelkeep() {
    check("- {regex: 'tmp_.*', action: labeldrop}", "a=1,tmp_x=2,tmp_y=3", "a=1");
    check("- {regex: 'a|b', action: labelkeep}", "a=1,b=2,c=3", "a=1,b=2");
    check("- {regex: 'none', action: labelkeep}", "a=1", "dropped");
}

#[test]
fn lowercase_and_uppercase() {
    check(
        "- {source_labels: [a], target_label: b, action: lowercase}",
        "a=MiXeD",
        "a=MiXeD,b=mixed",
    );
    check(
        "- {source_labels: [a, c], target_label: b, action: uppercase}",
        "a=MiXeD,c=x",
        "a=MiXeD,b=MIXED;X,c=x",
    );
}

#[test]
fn steps_apply_in_order() {
    let cfg = r#"
- source_labels: [__address__]
  regex: '([^:]+):\d+'
  target_label: host
- source_labels: [host]
  regex: 'db.*'
  action: drop
- regex: '__address__'
  action: labeldrop
"#;
    check(cfg, "__address__=web1:9100", "host=web1");
    check(cfg, "__address__=db1:9100", "dropped");
}

#[test]
fn validation_errors() {
    let bad = [
        "- {source_labels: [a], action: replace}",
        "- {source_labels: [a], target_label: '0x', action: replace}",
        "- {source_labels: [a], target_label: h, action: hashmod}",
        "- {source_labels: [a], action: keepequal}",
        "- {source_labels: [a], regex: x, action: labeldrop}",
        "- {regex: x, action: labelmap, replacement: 'not valid'}",
        "- {target_label: x, action: lowercase, regex: x}",
    ];
    for (i, cfg) in bad.iter().enumerate() {
        let cfgs: Vec<RelabelConfig> = serde_norway::from_str(cfg).expect("parses");
        if i == bad.len() - 1 {
            // lowercase with a regex is accepted (the regex is unused), as in Prometheus.
            assert!(cfgs[0].validate().is_ok());
        } else {
            assert!(cfgs[0].validate().is_err(), "{cfg} should be refused");
        }
    }
    let bad_regex: Result<Vec<RelabelConfig>, _> = serde_norway::from_str("- {regex: '(', action: keep}");
    assert!(bad_regex.is_err());
    let bad_action: Result<Vec<RelabelConfig>, _> = serde_norway::from_str("- {action: frobnicate}");
    assert!(bad_action.is_err());
}
