use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000_000;

/// Parses `input` (precision ns, `db="telegraf"` as extra label) and renders
/// every sample as `labels t v` and every error as `ERR line N: reason`.
fn render(input: &str, precision: Precision) -> String {
    let limits = DecodeLimits {
        max_labels_per_series: 6,
        max_label_name_len: 20,
        max_label_value_len: 40,
        ..DecodeLimits::default()
    };
    let extra = [Label::new("db", "telegraf")];
    let opts = ParseOptions {
        precision,
        default_timestamp_ms: NOW,
        extra_labels: &extra,
        limits: &limits,
    };
    let batch = parse(input.as_bytes(), &opts);
    let mut out = String::new();
    for (labels, s) in &batch.samples {
        out.push_str(&format!("{labels} {} {}\n", s.t, s.v));
    }
    for e in &batch.errors {
        out.push_str(&format!("ERR {e}\n"));
    }
    if batch.num_string_fields_skipped > 0 {
        out.push_str(&format!("strings skipped: {}\n", batch.num_string_fields_skipped));
    }
    out
}

fn check(input: &str, expect: &str) {
    let got = render(input, Precision::Nanoseconds);
    assert_eq!(got.trim_end(), expect.trim(), "input: {input:?}\n--- got:\n{got}");
}

#[test]
fn measurement_tags_and_fields() {
    check(
        "cpu,host=a usage=1 1700000000123456789",
        r#"{__name__="cpu_usage", db="telegraf", host="a"} 1700000000123 1"#,
    );
    check(
        "cpu,host=a,cpu=cpu0 usage_idle=99.5,usage_user=0.5",
        r#"
{__name__="cpu_usage_idle", cpu="cpu0", db="telegraf", host="a"} 1700000000000 99.5
{__name__="cpu_usage_user", cpu="cpu0", db="telegraf", host="a"} 1700000000000 0.5"#,
    );
    check("temp value=21.5 1", r#"{__name__="temp", db="telegraf"} 0 21.5"#);
    // A tag named like an extra label wins over it.
    check("m,db=prod x=1 0", r#"{__name__="m_x", db="prod"} 0 1"#);
}

#[test]
fn field_types() {
    check(
        r#"m i=-3i,u=18446744073709551615u,f=1e3,t=t,T=TRUE,fa=False,s="hello, world",n=.5 0"#,
        r#"
{__name__="m_i", db="telegraf"} 0 -3
{__name__="m_u", db="telegraf"} 0 18446744073709552000
{__name__="m_f", db="telegraf"} 0 1000
{__name__="m_t", db="telegraf"} 0 1
{__name__="m_T", db="telegraf"} 0 1
{__name__="m_fa", db="telegraf"} 0 0
{__name__="m_n", db="telegraf"} 0 0.5
strings skipped: 1"#,
    );
    check(r#"m s="only a string" 0"#, "strings skipped: 1");
}

#[test]
fn escapes_and_sanitizing() {
    check(
        r#"my\ cpu\,x,host\ name=a\ b\,c\=d,1x=y,__name__=z load.1=2 0"#,
        r#"{__name__="my_cpu_x_load_1", db="telegraf", host_name="a b,c=d", key_1x="y", key__name__="z"} 0 2"#,
    );
    // A backslash before an ordinary character is literal.
    check(
        r#"m,path=C:\dir x=1 0"#,
        r#"{__name__="m_x", db="telegraf", path="C:\\dir"} 0 1"#,
    );
    check(r#"1m x=1 0"#, r#"{__name__="_1m_x", db="telegraf"} 0 1"#);
    check(
        r#"m s="a \"quoted\" \\ value",x=1 0"#,
        "{__name__=\"m_x\", db=\"telegraf\"} 0 1\nstrings skipped: 1",
    );
}

#[test]
fn precisions() {
    let cases = [
        (Precision::Nanoseconds, "1700000000999999999", 1_700_000_000_999i64),
        (Precision::Microseconds, "1700000000999999", 1_700_000_000_999),
        (Precision::Milliseconds, "1700000000999", 1_700_000_000_999),
        (Precision::Seconds, "1700000000", 1_700_000_000_000),
        (Precision::Minutes, "2", 120_000),
        (Precision::Hours, "1", 3_600_000),
    ];
    for (precision, ts, want) in cases {
        let got = render(&format!("m x=1 {ts}"), precision);
        assert_eq!(
            got,
            format!("{{__name__=\"m_x\", db=\"telegraf\"}} {want} 1\n"),
            "{precision:?}"
        );
    }
    assert_eq!(Precision::from_v1("u"), Some(Precision::Microseconds));
    assert_eq!(Precision::from_v1("µ"), Some(Precision::Microseconds));
    assert_eq!(Precision::from_v1("h"), Some(Precision::Hours));
    assert_eq!(Precision::from_v2("h"), None);
    assert_eq!(Precision::from_v2("us"), Some(Precision::Microseconds));
    assert_eq!(Precision::from_v1("x"), None);
}

#[test]
fn comments_blank_lines_and_crlf() {
    check(
        "# a comment\n\n   \r\nm x=1 5000000\r\n  m y=2 5000000\n",
        r#"
{__name__="m_x", db="telegraf"} 5 1
{__name__="m_y", db="telegraf"} 5 2"#,
    );
}

#[test]
fn bad_lines_are_reported_and_good_lines_kept() {
    let input = [
        "good x=1 0",                            // 1
        ",host=a x=1",                           // 2
        "m",                                     // 3
        "m,host x=1",                            // 4
        "m,host= x=1",                           // 5
        "m x",                                   // 6
        "m x=",                                  // 7
        "m x=abc",                               // 8
        "m x=1i2",                               // 9
        "m x=99999999999999999999i",             // 10
        r#"m x="open"#,                          // 11
        "m x=1 12ab",                            // 12
        "m x=1 1 2",                             // 13
        "m x=1 -5",                              // 14
        "m x=1 9223372036854775807",             // 15
        "m\\",                                   // 16
        "m =1",                                  // 17
        "m,=v x=1",                              // 18
        "m x=NaN",                               // 19
        "m x=1e999",                             // 20
        "m x=-u",                                // 21
        r#"m x="s"y"#,                           // 22
        "m,a=1,b=2,c=3,d=4,e=5 x=1",             // 23
        "m,aaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1 x=1", // 24
        "good y=2 0",                            // 25
    ]
    .join("\n");
    check(
        &input,
        r#"
{__name__="good_x", db="telegraf"} 0 1
{__name__="m_x", db="telegraf"} 9223372036854 1
{__name__="good_y", db="telegraf"} 0 2
ERR line 2: missing measurement
ERR line 3: missing fields
ERR line 4: missing value for tag "host"
ERR line 5: missing value for tag "host"
ERR line 6: missing value for field "x"
ERR line 7: invalid value "" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 8: invalid value "abc" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 9: invalid value "1i2" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 10: value "99999999999999999999i" of field "x" is out of range
ERR line 11: unterminated string value for field "x"
ERR line 12: invalid timestamp "12ab": expected an integer
ERR line 13: unexpected text "2" after the timestamp
ERR line 14: timestamp -5 is out of range (before 1970 or after 2262 in nanoseconds)
ERR line 16: backslash at end of line escapes nothing
ERR line 17: empty field key
ERR line 18: empty tag key
ERR line 19: invalid value "NaN" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 20: value "1e999" of field "x" is out of range
ERR line 21: invalid value "-u" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 22: invalid value "\"s\"y" for field "x": expected a float, integer (1i), unsigned (1u), boolean or "string"
ERR line 23: 7 labels exceed the limit of 6
ERR line 24: tag key of 29 bytes exceeds the limit of 20"#,
    );
}

#[test]
fn non_utf8_line_is_refused_alone() {
    let body = b"a x=1 0\nb\xff x=1 0\n";
    let limits = DecodeLimits::default();
    let opts = ParseOptions {
        precision: Precision::Nanoseconds,
        default_timestamp_ms: 0,
        extra_labels: &[],
        limits: &limits,
    };
    let batch = parse(body, &opts);
    assert_eq!(batch.samples.len(), 1);
    assert_eq!(batch.num_lines, 2);
    assert_eq!(batch.errors[0].to_string(), "line 2: line is not valid UTF-8");
}

fn parse_default(body: &[u8]) -> ParsedBatch {
    let limits = DecodeLimits::default();
    let opts = ParseOptions {
        precision: Precision::Nanoseconds,
        default_timestamp_ms: 0,
        extra_labels: &[],
        limits: &limits,
    };
    parse(body, &opts)
}

proptest! {
    #[test]
    fn never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_default(&body);
    }

    #[test]
    fn never_panics_on_line_like_text(body in r#"[a-z0-9,= \\"'.iuTtfe+\-\n\r#µ]{0,120}"#) {
        let batch = parse_default(body.as_bytes());
        for (labels, _) in &batch.samples {
            prop_assert!(labels.metric_name().is_some());
        }
        prop_assert!(batch.errors.len() <= batch.num_lines);
    }
}
