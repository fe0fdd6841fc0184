//! The real `promtool query instant|range|series|labels` (Debian package
//! `prometheus`) against Haetae and against a real Prometheus 2.42 holding
//! the same data: the printed output must be the same. Instant-vector and
//! series lines are compared as sorted sets, because Prometheus leaves the
//! order of an aggregation's result unspecified.

mod query_support;

use query_support::{client, generate, remote_write_all, require, start_haetae, start_prometheus};
use std::process::Command;

fn promtool(args: &[String]) -> (bool, String, String) {
    let out = Command::new(require("promtool"))
        .args(args)
        .output()
        .expect("cannot run promtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Equal text, except that numbers may differ in the last digits (within
/// 1e-9 relative: Prometheus 2.42 sums in a different order than 3.x).
fn same_text(a: &str, b: &str) -> bool {
    let tokens = |s: &str| -> Vec<String> {
        s.split(|c: char| c.is_whitespace() || "\",[]{}:".contains(c))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|(x, y)| {
            x == y
                || match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                    _ => false,
                }
        })
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

#[test]
fn promtool_prints_the_same_for_haetae_and_prometheus() {
    let prometheus = start_prometheus();
    let haetae = start_haetae(None);
    let data = generate();
    let client = client();
    remote_write_all(&client, &prometheus.url, &data.series);
    remote_write_all(&client, &haetae.url, &data.series);
    let secs = |ms: i64| (ms / 1000).to_string();
    let (t, start, end) = (secs(data.at(90)), secs(data.at(60)), secs(data.at(75)));

    let s = |x: &str| x.to_string();
    let commands: Vec<(Vec<String>, bool)> = vec![
        (vec![s("instant"), s("URL"), s("up"), format!("--time={t}")], true),
        (
            vec![
                s("instant"),
                s("URL"),
                s("sum by (job) (rate(http_requests_total[5m]))"),
                format!("--time={t}"),
            ],
            true,
        ),
        (
            vec![
                s("instant"),
                s("URL"),
                s("histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))"),
                format!("--time={t}"),
            ],
            true,
        ),
        (
            vec![s("instant"), s("URL"), s("scalar(sum(up))"), format!("--time={t}")],
            true,
        ),
        (
            vec![
                s("instant"),
                s("URL"),
                s("weird_gauge"),
                format!("--time={t}"),
                s("-o"),
                s("json"),
            ],
            true,
        ),
        (
            vec![
                s("range"),
                s("URL"),
                s("rate(node_cpu_seconds_total{mode=\"user\"}[5m])"),
                format!("--start={start}"),
                format!("--end={end}"),
                s("--step=1m"),
            ],
            false,
        ),
        (
            vec![
                s("range"),
                s("URL"),
                s("avg by (instance) (temperature_celsius)"),
                format!("--start={start}"),
                format!("--end={end}"),
                s("--step=30s"),
            ],
            false,
        ),
        (
            vec![
                s("series"),
                s("URL"),
                s("--match=up"),
                s("--match=http_requests_total{code=\"500\"}"),
                format!("--start={start}"),
                format!("--end={end}"),
            ],
            true,
        ),
        (vec![s("labels"), s("URL"), s("instance")], false),
        (vec![s("labels"), s("URL"), s("__name__")], false),
        (vec![s("labels"), s("URL"), s("job"), s("--match=up")], false),
    ];
    let mut failures = Vec::new();
    for (args, unordered) in &commands {
        let run = |url: &str| {
            let mut full = vec![s("query")];
            full.extend(
                args.iter()
                    .map(|a| if a == "URL" { url.to_string() } else { a.clone() }),
            );
            promtool(&full)
        };
        let (p_ok, p_out, p_err) = run(&prometheus.url);
        let (h_ok, h_out, h_err) = run(&haetae.url);
        assert!(p_ok, "promtool against Prometheus failed for {args:?}: {p_err}");
        assert!(!p_out.trim().is_empty(), "empty Prometheus output for {args:?}");
        let same = if *unordered {
            same_text(&sorted_lines(&p_out).join("\n"), &sorted_lines(&h_out).join("\n"))
        } else {
            same_text(&p_out, &h_out)
        };
        if !h_ok || !same {
            failures.push(format!(
                "promtool query {args:?}\n--- prometheus\n{p_out}\n--- haetae (ok={h_ok})\n{h_out}{h_err}"
            ));
        }
    }
    assert!(failures.is_empty(), "promtool output differs:\n{}", failures.join("\n"));
}
