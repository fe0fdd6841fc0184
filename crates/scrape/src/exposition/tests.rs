use super::*;
use proptest::prelude::*;

/// Renders a parsed body one item per line: samples, metadata, errors.
fn render(body: &ParsedBody) -> String {
    let mut out = String::new();
    for s in &body.samples {
        let v = if s.value.is_nan() {
            "NaN".to_string()
        } else {
            s.value.to_string()
        };
        out.push_str(&format!(
            "{} {} {:?} {}\n",
            s.labels,
            v,
            s.timestamp_ms,
            s.metric_type.as_str()
        ));
    }
    for m in &body.metadata {
        out.push_str(&format!(
            "meta {} {} {:?} {:?}\n",
            m.family,
            m.metric_type.map_or("-", |t| t.as_str()),
            m.help,
            m.unit
        ));
    }
    for e in &body.errors {
        out.push_str(&format!("error {e}\n"));
    }
    out
}

fn check(format: Format, input: &str, expected: &str) {
    let got = render(&parse(input.as_bytes(), format));
    assert_eq!(got.trim(), expected.trim(), "\n--- got ---\n{got}");
}

#[test]
fn text_format_basics() {
    check(
        Format::PrometheusText,
        r#"
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment.
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
nan_value NaN
# HELP help_escape line\nbreak and back\\slash
"#,
        r#"
{__name__="http_requests_total", code="200", method="post"} 1027 Some(1395066363000) counter
{__name__="http_requests_total", code="400", method="post"} 3 Some(1395066363000) counter
{__name__="msdos_file_access_time_seconds", error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"} 1458255915 None unknown
{__name__="metric_without_timestamp_and_labels"} 12.47 None unknown
{__name__="something_weird", problem="division by zero"} inf Some(-3982045) unknown
{__name__="nan_value"} NaN None unknown
meta http_requests_total counter "The total number of HTTP requests." ""
meta help_escape - "line\nbreak and back\\slash" ""
"#,
    );
}

#[test]
fn histogram_and_summary_suffixes() {
    check(
        Format::PrometheusText,
        r#"
# TYPE rpc histogram
rpc_bucket{le="0.05"} 24054
rpc_bucket{le="+Inf"} 144320
rpc_sum 53423
rpc_count 144320
# TYPE lat summary
lat{quantile="0.5"} 4773
lat_sum 1.7560473e+07
lat_count 2693
lat_other 1
"#,
        r#"
{__name__="rpc_bucket", le="0.05"} 24054 None histogram
{__name__="rpc_bucket", le="+Inf"} 144320 None histogram
{__name__="rpc_sum"} 53423 None histogram
{__name__="rpc_count"} 144320 None histogram
{__name__="lat", quantile="0.5"} 4773 None summary
{__name__="lat_sum"} 17560473 None summary
{__name__="lat_count"} 2693 None summary
{__name__="lat_other"} 1 None unknown
meta rpc histogram "" ""
meta lat summary "" ""
"#,
    );
}

#[test]
fn bad_lines_are_counted_and_the_rest_kept() {
    check(
        Format::PrometheusText,
        r#"good 1
bad_escape{a="x\qy"} 1
dup 1
dup 2
nan_ts 1 NaN
0badname 1
bad{0l="x"} 1
bad{a="x",a="y"} 1
novalue
bad_value abc
# TYPE t counter
# TYPE t gauge
# TYPE u nonsense
unterminated{a="x} 1
good2{a="1"} 2
"#,
        r#"
{__name__="good"} 1 None unknown
{__name__="dup"} 1 None unknown
{__name__="good2", a="1"} 2 None unknown
meta t counter "" ""
error line 2: invalid escape sequence \q in label value
error line 4: duplicate series {__name__="dup"}
error line 5: invalid timestamp "NaN"
error line 6: invalid metric name "0badname"
error line 7: invalid label name "0l"
error line 8: duplicate label name "a"
error line 9: syntax error: expected whitespace after the series
error line 10: invalid value "abc"
error line 12: second TYPE line for metric family "t"
error line 13: invalid metric type "nonsense"
error line 14: syntax error: unterminated label set
"#,
    );
}

#[test]
fn openmetrics_basics() {
    check(
        Format::OpenMetrics,
        r#"# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE foo counter
foo_total 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
foo_created 1520430000.123
# TYPE h histogram
h_bucket{le="1"} 2 # {id="x"} 0.5 1520879607.7
h_bucket{le="+Inf"} 3
# EOF
"#,
        r#"
{__name__="acme_http_router_request_seconds_sum", method="GET", path="/api/v1"} 9036.32 None summary
{__name__="acme_http_router_request_seconds_count", method="GET", path="/api/v1"} 807283 None summary
{__name__="acme_http_router_request_seconds_created", method="GET", path="/api/v1"} 1605281325 None summary
{__name__="foo_total"} 17 Some(1520879607789) counter
{__name__="foo_created"} 1520430000.123 None counter
{__name__="h_bucket", le="1"} 2 None histogram
{__name__="h_bucket", le="+Inf"} 3 None histogram
meta acme_http_router_request_seconds summary "Latency though all of ACME's HTTP request router." "seconds"
meta foo counter "" ""
meta h histogram "" ""
"#,
    );
}

#[test]
fn openmetrics_eof_rules() {
    check(
        Format::OpenMetrics,
        "a 1\n",
        r#"
{__name__="a"} 1 None unknown
error line 2: OpenMetrics body does not end with # EOF
"#,
    );
    check(
        Format::OpenMetrics,
        "a 1\n# EOF\nb 2\n",
        r#"
{__name__="a"} 1 None unknown
error line 3: content after # EOF
"#,
    );
    check(
        Format::OpenMetrics,
        "a 1 # {bad} 1\nb 1 inf\n# EOF\n",
        r#"
error line 1: syntax error: expected '=' after label name
error line 2: invalid timestamp "inf"
"#,
    );
}

#[test]
fn content_type_selects_format() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        Format::PrometheusText
    );
    assert_eq!(Format::from_content_type(""), Format::PrometheusText);
}

#[test]
fn series_text_is_the_raw_cache_key() {
    let mut p = Parser::new(b"a{x=\"1\"} 1\n  b  2 5\n", Format::PrometheusText);
    let Some(Ok(Entry::Sample(s))) = p.next() else {
        panic!("expected a sample")
    };
    assert_eq!(
        (s.series, s.name, s.value, s.timestamp_ms),
        ("a{x=\"1\"}", "a", 1.0, None)
    );
    let Some(Ok(Entry::Sample(s))) = p.next() else {
        panic!("expected a sample")
    };
    assert_eq!((s.series, s.value, s.timestamp_ms), ("b", 2.0, Some(5)));
    assert!(p.next().is_none());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&data, Format::PrometheusText);
        let _ = parse(&data, Format::OpenMetrics);
    }

    #[test]
    fn never_panics_on_exposition_like_text(
        lines in proptest::collection::vec("[a-z_{}=\",# \\\\.0-9EOFTYPEHELPNaInf+-]{0,40}", 0..20)
    ) {
        let body = lines.join("\n");
        let _ = parse(body.as_bytes(), Format::PrometheusText);
        let _ = parse(body.as_bytes(), Format::OpenMetrics);
    }
}
