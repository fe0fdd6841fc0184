//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text
//! format, parsed line by line.
//!
//! Layer 3. Owns the grammar of a scrape body; it knows nothing about
//! targets, relabeling or storage.
//!
//! Two levels:
//! - [`Parser`] is a zero-copy iterator of [`Entry`]s. A sample line is only
//!   split into its *series text* (`name{labels}`, the raw bytes), value and
//!   timestamp; the labels are parsed by [`parse_series`] on demand. The
//!   scrape loop caches parsed label sets by series text, so a steady target
//!   costs one hash lookup per line.
//! - [`parse`] parses a whole body into label sets, metadata and per-line
//!   errors (for imports and tests).
//!
//! Design constraints:
//! - A bad line never aborts the parse: it yields a [`LineError`] with its
//!   1-based line number and the parser continues with the next line.
//! - Nothing here panics on any input (fuzzed and proptested).
//! - Exemplars are parsed (so that their syntax is checked) and dropped.
//! - OpenMetrics timestamps are seconds (float), text-format timestamps are
//!   integer milliseconds; both come out as milliseconds.
//! - `_created` samples are kept as ordinary series, as Prometheus 2.42 does.

use model::{Label, Labels, METRIC_NAME};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Which grammar a body follows, chosen from the response's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4` (also the fallback for unknown types).
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`; must end with `# EOF`.
    OpenMetrics,
}

impl Format {
    /// Picks the format for a Content-Type header value; anything that is not
    /// OpenMetrics is read as the text format, as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// The `Accept` header a scraper sends: OpenMetrics preferred, the text
/// format as fallback (the same preference order as Prometheus 2.42).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The type of a metric family from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `untyped` (text format) or `unknown` (OpenMetrics), or no TYPE line.
    Unknown,
}

impl MetricType {
    /// The name used by Prometheus' metadata APIs (`untyped` is `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &str, format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::PrometheusText) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The sample-name suffixes that belong to a family of this type.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Histogram => &["_bucket", "_sum", "_count", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            MetricType::Summary => &["_sum", "_count", "_created"],
            MetricType::Info => &["_info"],
            _ => &[],
        }
    }
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// The metric name is empty or has characters outside `[a-zA-Z0-9_:]`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A label name is empty, starts with a digit or has characters outside `[a-zA-Z0-9_]`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// The same label name twice in one series.
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    /// A backslash escape other than `\\`, `\"`, `\n` in a label value.
    #[error("invalid escape sequence \\{0} in label value")]
    InvalidEscape(char),
    /// The line does not follow the grammar.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// The value is not a float (`NaN`, `+Inf`, `-Inf` are floats).
    #[error("invalid value {0:?}")]
    InvalidValue(String),
    /// The timestamp is not an integer (text format) or a finite float (OpenMetrics).
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A `# TYPE` line names an unknown type.
    #[error("invalid metric type {0:?}")]
    InvalidType(String),
    /// A second `# TYPE`, `# HELP` or `# UNIT` line for one family.
    #[error("second {kind} line for metric family {family:?}")]
    DuplicateMetadata {
        /// `TYPE`, `HELP` or `UNIT`.
        kind: &'static str,
        /// The family name.
        family: String,
    },
    /// The same series twice in one scrape.
    #[error("duplicate series {0}")]
    DuplicateSeries(String),
    /// OpenMetrics: the body does not end with `# EOF`.
    #[error("OpenMetrics body does not end with # EOF")]
    MissingEof,
    /// OpenMetrics: content after `# EOF`.
    #[error("content after # EOF")]
    AfterEof,
}

/// A refused line: its 1-based number and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct LineError {
    /// 1-based line number in the body.
    pub line: usize,
    /// What was wrong.
    pub kind: LineErrorKind,
}

/// One sample line, split but with its labels not yet parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLine<'a> {
    /// The raw `name{labels}` text, without surrounding whitespace; the
    /// cache key of the series. Pass it to [`parse_series`] for the labels.
    pub series: &'a str,
    /// The metric name (already validated).
    pub name: &'a str,
    /// The value; may be NaN or ±Inf.
    pub value: f64,
    /// The explicit timestamp in milliseconds, if the line has one.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

/// What one line of a body holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP family text`, the text unescaped.
    Help {
        /// The family name.
        family: &'a str,
        /// The help text.
        help: Cow<'a, str>,
    },
    /// `# TYPE family type`.
    Type {
        /// The family name.
        family: &'a str,
        /// The type.
        metric_type: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics).
    Unit {
        /// The family name.
        family: &'a str,
        /// The unit.
        unit: &'a str,
    },
    /// A sample.
    Sample(SampleLine<'a>),
}

/// A zero-copy iterator over the entries of a body; comments and blank lines
/// are skipped, bad lines come out as `Err` and parsing goes on.
pub struct Parser<'a> {
    data: &'a [u8],
    /// `data` as text when all of it is valid UTF-8 (checked once, so lines
    /// need no check of their own); otherwise each line is checked.
    text: Option<&'a str>,
    pos: usize,
    line_no: usize,
    format: Format,
    eof_seen: bool,
    finished: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `data` in `format`.
    pub fn new(data: &'a [u8], format: Format) -> Self {
        Parser {
            data,
            text: std::str::from_utf8(data).ok(),
            pos: 0,
            line_no: 0,
            format,
            eof_seen: false,
            finished: false,
        }
    }

    /// The 1-based number of the line last read.
    pub fn line(&self) -> usize {
        self.line_no
    }

    /// The next line without its `\n` (and `\r`), as text, or `Err` if it
    /// is not valid UTF-8.
    fn next_line(&mut self) -> Option<Result<&'a str, LineErrorKind>> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.data[start..];
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.pos += len + 1;
        self.line_no += 1;
        let mut end = start + len;
        if end > start && self.data[end - 1] == b'\r' {
            end -= 1;
        }
        // Slicing at ASCII `\n`/`\r` positions keeps to char boundaries.
        Some(match self.text {
            Some(text) => match text.get(start..end) {
                Some(line) => Ok(line),
                None => Err(LineErrorKind::InvalidUtf8),
            },
            None => std::str::from_utf8(&self.data[start..end]).map_err(|_| LineErrorKind::InvalidUtf8),
        })
    }

    fn parse_line(&mut self, line: &'a str) -> Result<Option<Entry<'a>>, LineErrorKind> {
        if self.eof_seen {
            return Err(LineErrorKind::AfterEof);
        }
        if line.trim().is_empty() {
            return Ok(None);
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.parse_comment(comment);
        }
        parse_sample(line, self.format, self.line_no).map(|s| Some(Entry::Sample(s)))
    }

    fn parse_comment(&mut self, comment: &'a str) -> Result<Option<Entry<'a>>, LineErrorKind> {
        if self.format == Format::OpenMetrics && comment == " EOF" {
            self.eof_seen = true;
            return Ok(None);
        }
        let rest = comment.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_word(rest);
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") || (keyword == "UNIT" && self.format != Format::OpenMetrics) {
            // Any other comment is ignored.
            return Ok(None);
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let (family, rest) = split_word(rest);
        if !is_valid_metric_name(family) {
            return Err(LineErrorKind::InvalidMetricName(family.to_string()));
        }
        let text = rest.strip_prefix([' ', '\t']).unwrap_or(rest);
        match keyword {
            "HELP" => Ok(Some(Entry::Help {
                family,
                help: unescape_help(text),
            })),
            "TYPE" => {
                let t = text.trim();
                match MetricType::parse(t, self.format) {
                    Some(metric_type) => Ok(Some(Entry::Type { family, metric_type })),
                    None => Err(LineErrorKind::InvalidType(t.to_string())),
                }
            }
            _ => Ok(Some(Entry::Unit {
                family,
                unit: text.trim(),
            })),
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(raw) = self.next_line() else {
                if self.format == Format::OpenMetrics && !self.eof_seen && !self.finished {
                    self.finished = true;
                    return Some(Err(LineError {
                        line: self.line_no + 1,
                        kind: LineErrorKind::MissingEof,
                    }));
                }
                return None;
            };
            let result = raw.and_then(|line| self.parse_line(line));
            match result {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(kind) => {
                    return Some(Err(LineError {
                        line: self.line_no,
                        kind,
                    }))
                }
            }
        }
    }
}

fn split_word(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn unescape_help(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            // Unknown escapes in HELP are kept as written (lenient, like Prometheus' text parser).
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// `METRIC_NAME_BYTES[b]` tells whether byte `b` may appear in a metric
/// name after its first byte: `[a-zA-Z0-9_:]`.
static METRIC_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        b += 1;
    }
    table
};

/// Tells whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Tells whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Finds the end of a `{...}` label block starting at `open` (the index of
/// `{`), honouring quotes and escapes; returns the index after `}`.
fn label_block_end(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        // Outside quotes: up to a quote or the closing brace.
        while i < s.len() && s[i] != b'"' && s[i] != b'}' {
            i += 1;
        }
        if *s.get(i)? == b'}' {
            return Some(i + 1);
        }
        i += 1;
        // Inside quotes: up to the closing quote, skipping escaped bytes.
        loop {
            while i < s.len() && s[i] != b'"' && s[i] != b'\\' {
                i += 1;
            }
            if *s.get(i)? == b'"' {
                i += 1;
                break;
            }
            i += 2;
        }
    }
}

/// The next field separated by spaces or tabs, from `*pos` on.
fn next_field<'a>(s: &'a str, pos: &mut usize) -> Option<&'a str> {
    let b = s.as_bytes();
    let mut i = *pos;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i == b.len() {
        *pos = i;
        return None;
    }
    let start = i;
    while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
        i += 1;
    }
    *pos = i;
    Some(&s[start..i])
}

fn parse_sample(line: &str, format: Format, line_no: usize) -> Result<SampleLine<'_>, LineErrorKind> {
    let bytes = line.as_bytes();
    let start = bytes.iter().position(|c| *c != b' ' && *c != b'\t').unwrap_or(0);
    let name_end = bytes[start..]
        .iter()
        .position(|&c| !METRIC_NAME_BYTES[usize::from(c)])
        .map_or(bytes.len(), |p| start + p);
    let name = &line[start..name_end];
    // Every byte of `name` is a name byte: only the first one needs checking.
    if name.as_bytes().first().is_none_or(u8::is_ascii_digit) {
        let end = line[start..].find([' ', '\t', '{']).map_or(line.len(), |p| start + p);
        return Err(LineErrorKind::InvalidMetricName(line[start..end].to_string()));
    }
    let mut i = name_end;
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') && format == Format::PrometheusText {
        i += 1;
    }
    let series_end = if bytes.get(i) == Some(&b'{') {
        // `let else`, not `ok_or`: no error value built and dropped per line.
        let Some(end) = label_block_end(bytes, i) else {
            return Err(LineErrorKind::Syntax("unterminated label set"));
        };
        end
    } else {
        name_end
    };
    let series = &line[start..series_end];
    let rest = &line[series_end..];
    if !rest.starts_with([' ', '\t']) {
        return Err(LineErrorKind::Syntax("expected whitespace after the series"));
    }
    let (value_part, exemplar) = match format {
        Format::OpenMetrics => match rest.find(" # ") {
            Some(p) => (&rest[..p], Some(&rest[p + 3..])),
            None => (rest, None),
        },
        Format::PrometheusText => (rest, None),
    };
    let mut pos = 0;
    let Some(value_text) = next_field(value_part, &mut pos) else {
        return Err(LineErrorKind::Syntax("missing value"));
    };
    let value = parse_value(value_text)?;
    let timestamp_ms = match next_field(value_part, &mut pos) {
        None => None,
        Some(t) => Some(parse_timestamp(t, format)?),
    };
    if next_field(value_part, &mut pos).is_some() {
        return Err(LineErrorKind::Syntax("unexpected text after the timestamp"));
    }
    if let Some(exemplar) = exemplar {
        check_exemplar(exemplar)?;
    }
    Ok(SampleLine {
        series,
        name,
        value,
        timestamp_ms,
        line: line_no,
    })
}

fn parse_value(text: &str) -> Result<f64, LineErrorKind> {
    // Rust accepts "inf", "infinity", "nan" in any case, and a leading '+',
    // which covers Go's ParseFloat spellings of NaN and ±Inf.
    text.parse::<f64>()
        .map_err(|_| LineErrorKind::InvalidValue(text.to_string()))
}

fn parse_timestamp(text: &str, format: Format) -> Result<i64, LineErrorKind> {
    let invalid = || LineErrorKind::InvalidTimestamp(text.to_string());
    match format {
        Format::PrometheusText => text.parse::<i64>().map_err(|_| invalid()),
        Format::OpenMetrics => {
            let secs: f64 = text.parse().map_err(|_| invalid())?;
            if !secs.is_finite() {
                return Err(invalid());
            }
            let ms = (secs * 1000.0).round();
            if ms.abs() >= 9.2e18 {
                return Err(invalid());
            }
            Ok(ms as i64)
        }
    }
}

/// Checks an OpenMetrics exemplar (`{labels} value [timestamp]`) and drops it.
fn check_exemplar(text: &str) -> Result<(), LineErrorKind> {
    let text = text.trim_start();
    if !text.starts_with('{') {
        return Err(LineErrorKind::Syntax("exemplar must start with a label set"));
    }
    let end = label_block_end(text.as_bytes(), 0).ok_or(LineErrorKind::Syntax("unterminated exemplar label set"))?;
    let mut scratch = Vec::new();
    parse_label_block(&text[..end], &mut scratch)?;
    let mut fields = text[end..].split([' ', '\t']).filter(|f| !f.is_empty());
    let v = fields.next().ok_or(LineErrorKind::Syntax("exemplar without value"))?;
    parse_value(v)?;
    if let Some(t) = fields.next() {
        parse_timestamp(t, Format::OpenMetrics)?;
    }
    if fields.next().is_some() {
        return Err(LineErrorKind::Syntax("unexpected text after the exemplar"));
    }
    Ok(())
}

/// Parses series text (`name` or `name{a="b",...}`, as in
/// [`SampleLine::series`]) into `out`: `__name__` first, then the labels in
/// the order written, values unescaped. Label names are validated and must
/// be unique; empty values are kept (callers drop them when building
/// [`Labels`]).
pub fn parse_series(series: &str, out: &mut Vec<Label>) -> Result<(), LineErrorKind> {
    out.clear();
    let name_end = series.find(['{', ' ', '\t']).unwrap_or(series.len());
    let name = &series[..name_end];
    if !is_valid_metric_name(name) {
        return Err(LineErrorKind::InvalidMetricName(name.to_string()));
    }
    out.push(Label::new(METRIC_NAME, name));
    let rest = series[name_end..].trim_start();
    if rest.is_empty() {
        return Ok(());
    }
    parse_label_block(rest, out)?;
    for (i, l) in out.iter().enumerate().skip(1) {
        if out[..i].iter().any(|o| o.name == l.name) {
            return Err(LineErrorKind::DuplicateLabelName(l.name.clone()));
        }
    }
    Ok(())
}

/// Parses `{a="b", c="d",}` appending to `out`.
fn parse_label_block(block: &str, out: &mut Vec<Label>) -> Result<(), LineErrorKind> {
    let inner = block
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or(LineErrorKind::Syntax("malformed label set"))?;
    let mut s = inner;
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or(LineErrorKind::Syntax("expected '=' after label name"))?;
        let name = s[..eq].trim_end();
        if !is_valid_label_name(name) {
            return Err(LineErrorKind::InvalidLabelName(name.to_string()));
        }
        s = s[eq + 1..].trim_start();
        let body = s
            .strip_prefix('"')
            .ok_or(LineErrorKind::Syntax("label value must be quoted"))?;
        let (value, consumed) = unescape_label_value(body)?;
        out.push(Label {
            name: name.to_string(),
            value,
        });
        s = body[consumed..].trim_start();
        match s.strip_prefix(',') {
            Some(after) => s = after,
            None if s.is_empty() => return Ok(()),
            None => return Err(LineErrorKind::Syntax("expected ',' or '}' after label value")),
        }
    }
}

/// Unescapes a label value up to its closing quote; returns the value and
/// how many bytes of `body` were consumed, closing quote included.
fn unescape_label_value(body: &str) -> Result<(String, usize), LineErrorKind> {
    let bytes = body.as_bytes();
    let Some(first) = bytes.iter().position(|b| *b == b'"' || *b == b'\\') else {
        return Err(LineErrorKind::Syntax("unterminated label value"));
    };
    if bytes[first] == b'"' {
        return Ok((body[..first].to_string(), first + 1));
    }
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..first]);
    let mut chars = body[first..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, first + i + 1)),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => return Err(LineErrorKind::InvalidEscape(other)),
                None => return Err(LineErrorKind::Syntax("unterminated label value")),
            },
            c => out.push(c),
        }
    }
    Err(LineErrorKind::Syntax("unterminated label value"))
}

/// HELP, TYPE and UNIT of one family, as collected by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FamilyMetadata {
    /// The family name as written in the metadata lines.
    pub family: String,
    /// The type; [`MetricType::Unknown`] without a TYPE line.
    pub metric_type: Option<MetricType>,
    /// The HELP text, unescaped.
    pub help: String,
    /// The unit (OpenMetrics).
    pub unit: String,
}

/// One parsed sample with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The series' labels, `__name__` included, empty values dropped.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// Explicit timestamp in milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The type of the family the sample belongs to.
    pub metric_type: MetricType,
}

/// A whole body parsed: samples, metadata and the refused lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedBody {
    /// Samples in body order; duplicates of an earlier series are refused.
    pub samples: Vec<ParsedSample>,
    /// Metadata per family, in order of first appearance.
    pub metadata: Vec<FamilyMetadata>,
    /// Refused lines.
    pub errors: Vec<LineError>,
}

/// Tracks metadata lines while parsing: refuses a second line of one kind
/// for one family, and resolves a sample name to its family's type.
#[derive(Default)]
pub struct MetadataTracker<'a> {
    seen: HashSet<(&'static str, &'a str)>,
    types: HashMap<&'a str, MetricType>,
}

impl<'a> MetadataTracker<'a> {
    /// Records a metadata entry; an `Err` for a repeated kind/family pair.
    pub fn observe(&mut self, entry: &Entry<'a>) -> Result<(), LineErrorKind> {
        let (kind, family) = match entry {
            Entry::Help { family, .. } => ("HELP", *family),
            Entry::Type { family, metric_type } => {
                self.types.insert(family, *metric_type);
                ("TYPE", *family)
            }
            Entry::Unit { family, .. } => ("UNIT", *family),
            Entry::Sample(_) => return Ok(()),
        };
        if !self.seen.insert((kind, family)) {
            return Err(LineErrorKind::DuplicateMetadata {
                kind,
                family: family.to_string(),
            });
        }
        Ok(())
    }

    /// The type of the family a sample named `name` belongs to: a family of
    /// the same name, or one that `name` extends by a suffix of its type
    /// (`_bucket`, `_sum`, `_count`, `_total`, `_created`, ...).
    pub fn type_of(&self, name: &str) -> MetricType {
        if let Some(t) = self.types.get(name) {
            return *t;
        }
        for (family, t) in &self.types {
            if let Some(suffix) = name.strip_prefix(family) {
                if t.suffixes().contains(&suffix) {
                    return *t;
                }
            }
        }
        MetricType::Unknown
    }
}

/// Parses a whole body. Never fails: bad lines are in [`ParsedBody::errors`].
pub fn parse(body: &[u8], format: Format) -> ParsedBody {
    let mut out = ParsedBody::default();
    let mut tracker = MetadataTracker::default();
    let mut family_idx: HashMap<String, usize> = HashMap::new();
    let mut seen_series: HashSet<Labels> = HashSet::new();
    let mut scratch = Vec::new();
    let mut parser = Parser::new(body, format);
    while let Some(item) = parser.next() {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        let line = parser.line();
        if let Err(kind) = tracker.observe(&entry) {
            out.errors.push(LineError { line, kind });
            continue;
        }
        let mut meta = |family: &str| -> usize {
            *family_idx.entry(family.to_string()).or_insert_with(|| {
                out.metadata.push(FamilyMetadata {
                    family: family.to_string(),
                    ..FamilyMetadata::default()
                });
                out.metadata.len() - 1
            })
        };
        match entry {
            Entry::Help { family, help } => {
                let i = meta(family);
                out.metadata[i].help = help.into_owned();
            }
            Entry::Type { family, metric_type } => {
                let i = meta(family);
                out.metadata[i].metric_type = Some(metric_type);
            }
            Entry::Unit { family, unit } => {
                let i = meta(family);
                out.metadata[i].unit = unit.to_string();
            }
            Entry::Sample(s) => {
                if let Err(kind) = parse_series(s.series, &mut scratch) {
                    out.errors.push(LineError { line: s.line, kind });
                    continue;
                }
                let labels = Labels::new(std::mem::take(&mut scratch));
                if !seen_series.insert(labels.clone()) {
                    out.errors.push(LineError {
                        line: s.line,
                        kind: LineErrorKind::DuplicateSeries(labels.to_string()),
                    });
                    continue;
                }
                out.samples.push(ParsedSample {
                    labels,
                    value: s.value,
                    timestamp_ms: s.timestamp_ms,
                    metric_type: tracker.type_of(s.name),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
