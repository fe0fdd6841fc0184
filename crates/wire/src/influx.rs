//! InfluxDB line protocol (`measurement,tag=v field=1i 1700000000000000000`),
//! parsed into Prometheus series.
//!
//! Layer 4: depends only on `model`. Owns the line grammar (escapes, field
//! types, timestamps with a precision) and the mapping to Prometheus names;
//! knows nothing about HTTP (query parameters, gzip and status codes are
//! `api`'s) and stores nothing.
//!
//! Mapping, documented for users in `docs/push.md`:
//!
//! - every numeric field becomes one series named `<measurement>_<field>`,
//!   or just `<measurement>` for a field named `value`, sanitized to
//!   Prometheus' metric-name rules ([`crate::names`]);
//! - tags become labels (keys sanitized, values as sent); the caller's
//!   [`ParseOptions::extra_labels`] (e.g. `db`) are added unless a tag of the
//!   same name is present;
//! - floats, integers (`1i`), unsigned integers (`1u`) and booleans
//!   (`t`/`T`/`true`/`True`/`TRUE` → 1, `f`/`F`/`false`/`False`/`FALSE` → 0)
//!   are stored as `f64`; string fields are skipped and counted;
//! - a missing timestamp means [`ParseOptions::default_timestamp_ms`].
//!
//! Design constraints:
//!
//! - a bad line never spoils the batch: it is reported as a [`LineError`]
//!   naming its 1-based line number, and the good lines are returned;
//! - no input makes the parser panic; a line is at most as large as the body,
//!   which the caller bounds;
//! - lines are split on `\n` first, so a string field value cannot hold a raw
//!   newline (InfluxDB tolerates that; Telegraf never sends it).

use model::{Label, Labels, Sample, METRIC_NAME};

use crate::names::{sanitize_label_name, sanitize_metric_name};
use crate::DecodeLimits;

/// The unit of the timestamps in a request (`precision` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds, the default.
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Minutes (v1 API only).
    Minutes,
    /// Hours (v1 API only).
    Hours,
}

impl Precision {
    /// Parses the v1 `/write` parameter: `ns` (or `n`, or empty), `u` (or
    /// `us`, `µ`), `ms`, `s`, `m`, `h`.
    pub fn from_v1(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µ" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    /// Parses the v2 `/api/v2/write` parameter: `ns` (or empty), `us`, `ms`, `s`.
    pub fn from_v2(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "ns" => Precision::Nanoseconds,
            "us" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    fn nanos(self) -> i128 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }
}

/// How to parse a body.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions<'a> {
    /// The unit of the timestamps.
    pub precision: Precision,
    /// The timestamp (ms) of lines without one: the server's time.
    pub default_timestamp_ms: i64,
    /// Labels added to every series unless a tag has the same (sanitized)
    /// name. Names must already be valid label names.
    pub extra_labels: &'a [Label],
    /// Label count and length limits.
    pub limits: &'a DecodeLimits,
}

/// The result of parsing a body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedBatch {
    /// One sample per numeric field of every good line, in input order.
    pub samples: Vec<(Labels, Sample)>,
    /// Lines that held data (not empty, not comments), good or bad.
    pub num_lines: usize,
    /// String fields of good lines, which are not stored.
    pub num_string_fields_skipped: usize,
    /// The bad lines, in input order.
    pub errors: Vec<LineError>,
}

/// One line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// The 1-based line number in the body.
    pub line: usize,
    /// Why.
    pub reason: LineErrorReason,
}

/// Why a line was refused. Names and values are cut to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorReason {
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// The line starts with a comma or space: there is no measurement.
    #[error("missing measurement")]
    MissingMeasurement,
    /// A backslash ends the line, escaping nothing.
    #[error("backslash at end of line escapes nothing")]
    DanglingEscape,
    /// A tag or field key is empty.
    #[error("empty {what} key")]
    EmptyKey {
        /// `tag` or `field`.
        what: &'static str,
    },
    /// A tag has no `=value`, or an empty value.
    #[error("missing value for tag {key:?}")]
    MissingTagValue {
        /// The tag key.
        key: String,
    },
    /// There is no field set after the measurement and tags.
    #[error("missing fields")]
    MissingFields,
    /// A field has no `=value`.
    #[error("missing value for field {field:?}")]
    MissingFieldValue {
        /// The field key.
        field: String,
    },
    /// A string field value has no closing quote.
    #[error("unterminated string value for field {field:?}")]
    UnterminatedString {
        /// The field key.
        field: String,
    },
    /// A field value is not a float, integer, unsigned, boolean or string.
    #[error("invalid value {value:?} for field {field:?}: expected a float, integer (1i), unsigned (1u), boolean or \"string\"")]
    InvalidFieldValue {
        /// The field key.
        field: String,
        /// The value as sent.
        value: String,
    },
    /// An integer or float field is outside its type's range (or a float is infinite).
    #[error("value {value:?} of field {field:?} is out of range")]
    FieldValueOutOfRange {
        /// The field key.
        field: String,
        /// The value as sent.
        value: String,
    },
    /// The timestamp is not an integer.
    #[error("invalid timestamp {value:?}: expected an integer")]
    InvalidTimestamp {
        /// The timestamp as sent.
        value: String,
    },
    /// The timestamp, in nanoseconds, does not fit an `i64` or is before 1970.
    #[error("timestamp {value} is out of range (before 1970 or after 2262 in nanoseconds)")]
    TimestampOutOfRange {
        /// The timestamp as sent.
        value: i64,
    },
    /// Something follows the timestamp.
    #[error("unexpected text {text:?} after the timestamp")]
    TrailingText {
        /// What follows.
        text: String,
    },
    /// The series would have more labels than allowed.
    #[error("{num_labels} labels exceed the limit of {limit}")]
    TooManyLabels {
        /// Labels of the series, metric name included.
        num_labels: usize,
        /// `DecodeLimits::max_labels_per_series`.
        limit: usize,
    },
    /// A tag key is longer than allowed.
    #[error("tag key of {len} bytes exceeds the limit of {limit}")]
    LabelNameTooLong {
        /// The key's length in bytes.
        len: usize,
        /// `DecodeLimits::max_label_name_len`.
        limit: usize,
    },
    /// A tag value or the metric name is longer than allowed.
    #[error("value of {name:?} is {len} bytes, exceeding the limit of {limit}")]
    LabelValueTooLong {
        /// The tag key, or `__name__`.
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// `DecodeLimits::max_label_value_len`.
        limit: usize,
    },
}

/// Names and values are cut to this many characters in error messages.
const MAX_CHARS_IN_MESSAGE: usize = 100;

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_CHARS_IN_MESSAGE) {
        None => s.to_string(),
        Some((end, _)) => format!("{}...", &s[..end]),
    }
}

/// Parses a whole body. Never fails as a whole: bad lines are in
/// [`ParsedBatch::errors`].
pub fn parse(body: &[u8], opts: &ParseOptions<'_>) -> ParsedBatch {
    let mut out = ParsedBatch::default();
    for (idx, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let start = raw.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(raw.len());
        let raw = &raw[start..];
        if raw.is_empty() || raw[0] == b'#' {
            continue;
        }
        out.num_lines += 1;
        let result = std::str::from_utf8(raw)
            .map_err(|_| LineErrorReason::NotUtf8)
            .and_then(|line| parse_line(line, opts, &mut out));
        if let Err(reason) = result {
            out.errors.push(LineError { line: idx + 1, reason });
        }
    }
    out
}

/// A field value as sent, before conversion to `f64`.
enum FieldValue {
    Number(f64),
    String,
}

/// Parses one line (not empty, not a comment, no leading whitespace) and
/// appends its samples to `out` only if the whole line is good.
fn parse_line(line: &str, opts: &ParseOptions<'_>, out: &mut ParsedBatch) -> Result<(), LineErrorReason> {
    let s = line.as_bytes();
    let (measurement, mut pos) = scan_escaped(s, 0, b", ", b", \\")?;
    if measurement.is_empty() {
        return Err(LineErrorReason::MissingMeasurement);
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    while s.get(pos) == Some(&b',') {
        let (key, p) = scan_escaped(s, pos + 1, b",= ", b",= \\")?;
        if key.is_empty() {
            return Err(LineErrorReason::EmptyKey { what: "tag" });
        }
        if s.get(p) != Some(&b'=') {
            return Err(LineErrorReason::MissingTagValue { key: cut(&key) });
        }
        let (value, p) = scan_escaped(s, p + 1, b", ", b",= \\")?;
        if value.is_empty() {
            return Err(LineErrorReason::MissingTagValue { key: cut(&key) });
        }
        tags.push((key, value));
        pos = p;
    }
    pos = skip_spaces(s, pos);
    if pos >= s.len() {
        return Err(LineErrorReason::MissingFields);
    }
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    loop {
        let (key, p) = scan_escaped(s, pos, b",= ", b",= \\")?;
        if key.is_empty() {
            return Err(LineErrorReason::EmptyKey { what: "field" });
        }
        if s.get(p) != Some(&b'=') {
            return Err(LineErrorReason::MissingFieldValue { field: cut(&key) });
        }
        let (value, p) = scan_field_value(s, p + 1, &key)?;
        fields.push((key, value));
        pos = p;
        if s.get(pos) == Some(&b',') {
            pos += 1;
            continue;
        }
        break;
    }
    pos = skip_spaces(s, pos);
    let t = if pos < s.len() {
        let end = s[pos..].iter().position(|&b| b == b' ').map_or(s.len(), |i| pos + i);
        let text = &line[pos..end];
        let rest = skip_spaces(s, end);
        if rest < s.len() {
            return Err(LineErrorReason::TrailingText {
                text: cut(&line[rest..]),
            });
        }
        timestamp_ms(text, opts.precision)?
    } else {
        opts.default_timestamp_ms
    };

    let labels = build_labels(&tags, opts)?;
    let measurement = sanitize_metric_name(&measurement);
    let start = out.samples.len();
    for (field, value) in fields {
        let v = match value {
            FieldValue::Number(v) => v,
            FieldValue::String => {
                out.num_string_fields_skipped += 1;
                continue;
            }
        };
        let name = if field == "value" {
            measurement.clone()
        } else {
            sanitize_metric_name(&format!("{measurement}_{field}"))
        };
        if name.len() > opts.limits.max_label_value_len {
            out.samples.truncate(start);
            return Err(LineErrorReason::LabelValueTooLong {
                name: METRIC_NAME.to_string(),
                len: name.len(),
                limit: opts.limits.max_label_value_len,
            });
        }
        let mut series = labels.clone();
        series.push(Label::new(METRIC_NAME, name));
        out.samples.push((Labels::new(series), Sample::new(t, v)));
    }
    Ok(())
}

/// Turns tags into labels, adds the extra labels, checks the limits. The
/// metric name is not included but counted.
fn build_labels(tags: &[(String, String)], opts: &ParseOptions<'_>) -> Result<Vec<Label>, LineErrorReason> {
    let limits = opts.limits;
    let mut labels: Vec<Label> = Vec::with_capacity(tags.len() + opts.extra_labels.len() + 1);
    for (key, value) in tags {
        if key.len() > limits.max_label_name_len {
            return Err(LineErrorReason::LabelNameTooLong {
                len: key.len(),
                limit: limits.max_label_name_len,
            });
        }
        if value.len() > limits.max_label_value_len {
            return Err(LineErrorReason::LabelValueTooLong {
                name: cut(key),
                len: value.len(),
                limit: limits.max_label_value_len,
            });
        }
        labels.push(Label::new(sanitize_label_name(key), value.clone()));
    }
    for extra in opts.extra_labels {
        if !labels.iter().any(|l| l.name == extra.name) {
            labels.push(extra.clone());
        }
    }
    // Duplicate tag keys collapse into one label later; count them once.
    let mut names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let num_labels = names.len() + 1;
    if num_labels > limits.max_labels_per_series {
        return Err(LineErrorReason::TooManyLabels {
            num_labels,
            limit: limits.max_labels_per_series,
        });
    }
    Ok(labels)
}

/// Reads from `pos` up to the first unescaped byte of `stops` (or the end),
/// removing the backslash before any byte of `escapable`. A backslash before
/// another byte is kept literally, as InfluxDB does; one that ends the line
/// is an error.
fn scan_escaped(s: &[u8], mut pos: usize, stops: &[u8], escapable: &[u8]) -> Result<(String, usize), LineErrorReason> {
    let mut out: Vec<u8> = Vec::new();
    while let Some(&b) = s.get(pos) {
        if b == b'\\' {
            match s.get(pos + 1) {
                None => return Err(LineErrorReason::DanglingEscape),
                Some(&next) if escapable.contains(&next) => {
                    out.push(next);
                    pos += 2;
                }
                Some(_) => {
                    out.push(b'\\');
                    pos += 1;
                }
            }
            continue;
        }
        if stops.contains(&b) {
            break;
        }
        out.push(b);
        pos += 1;
    }
    // Only ASCII backslashes were removed from valid UTF-8, so this cannot
    // fail; map the impossible case to an error rather than panic.
    let text = String::from_utf8(out).map_err(|_| LineErrorReason::NotUtf8)?;
    Ok((text, pos))
}

fn skip_spaces(s: &[u8], mut pos: usize) -> usize {
    while s.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

/// Reads a field value starting at `pos`; returns it and the position of the
/// byte after it (a `,`, a space or the end).
fn scan_field_value(s: &[u8], pos: usize, field: &str) -> Result<(FieldValue, usize), LineErrorReason> {
    if s.get(pos) == Some(&b'"') {
        let mut p = pos + 1;
        loop {
            match s.get(p) {
                None => return Err(LineErrorReason::UnterminatedString { field: cut(field) }),
                Some(b'\\') if p + 1 < s.len() => p += 2,
                Some(b'"') => break,
                Some(_) => p += 1,
            }
        }
        let end = p + 1;
        return match s.get(end) {
            None | Some(b',') | Some(b' ') => Ok((FieldValue::String, end)),
            Some(_) => Err(LineErrorReason::InvalidFieldValue {
                field: cut(field),
                value: cut(&String::from_utf8_lossy(&s[pos..])),
            }),
        };
    }
    let end = s[pos..]
        .iter()
        .position(|&b| b == b',' || b == b' ')
        .map_or(s.len(), |i| pos + i);
    let text = std::str::from_utf8(&s[pos..end]).map_err(|_| LineErrorReason::NotUtf8)?;
    let v = parse_number(text, field)?;
    Ok((FieldValue::Number(v), end))
}

/// Parses a non-string field value into an `f64`.
fn parse_number(text: &str, field: &str) -> Result<f64, LineErrorReason> {
    let invalid = || LineErrorReason::InvalidFieldValue {
        field: cut(field),
        value: cut(text),
    };
    let out_of_range = || LineErrorReason::FieldValueOutOfRange {
        field: cut(field),
        value: cut(text),
    };
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if let Some(digits) = text.strip_suffix('i') {
        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        return digits.parse::<i64>().map(|v| v as f64).map_err(|_| out_of_range());
    }
    if let Some(digits) = text.strip_suffix('u') {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        return digits.parse::<u64>().map(|v| v as f64).map_err(|_| out_of_range());
    }
    // Rust's float parser also takes `inf` and `NaN`; InfluxDB does not.
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !looks_numeric {
        return Err(invalid());
    }
    let v: f64 = text.parse().map_err(|_| invalid())?;
    if !v.is_finite() {
        return Err(out_of_range());
    }
    Ok(v)
}

/// Converts a timestamp in `precision` units to milliseconds (rounding down).
fn timestamp_ms(text: &str, precision: Precision) -> Result<i64, LineErrorReason> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineErrorReason::InvalidTimestamp { value: cut(text) });
    }
    let value: i64 = text
        .parse()
        .map_err(|_| LineErrorReason::InvalidTimestamp { value: cut(text) })?;
    let nanos = i128::from(value) * precision.nanos();
    if nanos < 0 || nanos > i128::from(i64::MAX) {
        return Err(LineErrorReason::TimestampOutOfRange { value });
    }
    // In range of i64 nanoseconds, so the milliseconds fit too.
    Ok((nanos / 1_000_000) as i64)
}

#[cfg(test)]
mod tests;
