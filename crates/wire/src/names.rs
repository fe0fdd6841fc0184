//! Turns foreign names (Influx measurements, fields and tags; OpenTelemetry
//! metric names and attribute keys) into valid Prometheus metric and label
//! names.
//!
//! Layer 4: pure string functions, shared by [`crate::influx`] and
//! [`crate::otlp`]. The rules, documented in `docs/push.md`:
//!
//! - metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`: every other character
//!   becomes `_`, and a leading digit gets a `_` prefix;
//! - label names match `[a-zA-Z_][a-zA-Z0-9_]*`: every other character becomes
//!   `_`; a leading digit gets a `key_` prefix and a leading `__` (reserved
//!   for Prometheus' internal labels such as `__name__`) a `key` prefix, as
//!   the OpenTelemetry-to-Prometheus translator does.

/// Sanitizes a metric name; an empty name stays empty (the caller refuses it).
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

/// Sanitizes a label name; an empty name stays empty (the caller refuses it).
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push_str("key_");
    } else if name.starts_with("__") {
        out.push_str("key");
    }
    out.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }),
    );
    // `key` + `__x` is `key__x`, no longer reserved; a name made only of
    // replaced characters such as `é` becomes `_`, which is valid.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        let cases = [
            ("cpu", "cpu"),
            ("cpu.usage", "cpu_usage"),
            ("1cpu", "_1cpu"),
            ("a:b-c", "a:b_c"),
            ("é", "_"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_metric_name(input), want, "{input:?}");
        }
    }

    #[test]
    fn label_names() {
        let cases = [
            ("host", "host"),
            ("host.name", "host_name"),
            ("a:b", "a_b"),
            ("1x", "key_1x"),
            ("__name__", "key__name__"),
            ("_x", "_x"),
            ("é", "_"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_label_name(input), want, "{input:?}");
        }
    }
}
