//! Parsing of the test-script notations: durations, series descriptions
//! (`metric{labels} 0+10x5 _ stale`), numbers and Go string literals.
//! Layer 2 (test support, no engine logic).

pub(crate) use crate::duration_expr::parse_duration;
use model::{Label, Labels, STALE_NAN};

/// One expanded position of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item {
    /// No sample at this position.
    Omitted,
    /// A float sample (possibly the staleness marker).
    Float(f64),
    /// A native histogram sample (not loaded; only flagged).
    Histogram,
}

/// A parsed series description.
#[derive(Debug, Clone)]
pub(crate) struct SeriesDesc {
    pub(crate) labels: Labels,
    pub(crate) items: Vec<Item>,
}

/// Parses a number as the test scripts write it (Go `ParseFloat` syntax, and
/// `Inf`/`NaN` in any case).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.len() + 1 < lower.len() {
        return None;
    }
    let neg = lower.starts_with('-');
    let v = match unsigned {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => return Some(f64::NAN),
        _ => {
            if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                return None;
            }
            unsigned.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// Unquotes a Go string literal (`"…"`, `'…'` or `` `…` ``).
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let bad = || format!("bad string literal {s}");
    if s.len() < 2 {
        return Err(bad());
    }
    let quote = s.as_bytes()[0];
    if !matches!(quote, b'"' | b'\'' | b'`') || s.as_bytes()[s.len() - 1] != quote {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    if quote == b'`' {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                out.push(char::from_u32(code).ok_or_else(bad)?);
            }
            '0'..='7' => {
                let mut oct = String::from(e);
                for _ in 0..2 {
                    oct.push(chars.next().ok_or_else(bad)?);
                }
                let code = u32::from_str_radix(&oct, 8).map_err(|_| bad())?;
                out.push(char::from_u32(code).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Reads a quoted string starting at byte `i`; returns (end offset, value).
fn read_quoted(s: &str, i: usize) -> Result<(usize, String), String> {
    let b = s.as_bytes();
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && quote != b'`' {
            j += 2;
            continue;
        }
        if b[j] == quote {
            return Ok((j + 1, unquote(&s[i..=j])?));
        }
        j += 1;
    }
    Err(format!("unterminated string in {s:?}"))
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Parses the metric part of a series description; returns the labels and
/// the rest of the line.
pub(crate) fn parse_metric(s: &str) -> Result<(Labels, &str), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut labels: Vec<Label> = Vec::new();
    while i < b.len() && is_ident_byte(b[i]) {
        i += 1;
    }
    if i > 0 {
        labels.push(Label::new(model::METRIC_NAME, &s[..i]));
    }
    let mut j = i;
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    if j < b.len() && b[j] == b'{' && !s[j..].starts_with("{{") {
        i = j + 1;
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err(format!("unterminated label set in {s:?}"));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let name = if matches!(b[i], b'"' | b'\'' | b'`') {
                let (end, v) = read_quoted(s, i)?;
                i = end;
                v
            } else {
                let start = i;
                while i < b.len() && is_ident_byte(b[i]) {
                    i += 1;
                }
                if start == i {
                    return Err(format!("bad label name in {s:?}"));
                }
                s[start..i].to_string()
            };
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' {
                // A quoted metric name inside the braces: `{"my.metric"}`.
                labels.push(Label::new(model::METRIC_NAME, name));
                continue;
            }
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() || !matches!(b[i], b'"' | b'\'' | b'`') {
                return Err(format!("expected label value in {s:?}"));
            }
            let (end, value) = read_quoted(s, i)?;
            i = end;
            labels.push(Label::new(name, value));
        }
    } else if i == 0 {
        return Err(format!("expected metric in {s:?}"));
    }
    Ok((Labels::new(labels), &s[i..]))
}

/// Splits value items on white space, keeping `{{ … }}` histogram items whole.
fn split_items(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut depth = 0usize;
        while i < b.len() {
            if b[i] == b'{' {
                depth += 1;
            } else if b[i] == b'}' {
                depth = depth.saturating_sub(1);
            } else if b[i].is_ascii_whitespace() && depth == 0 {
                break;
            }
            i += 1;
        }
        out.push(&s[start..i]);
    }
    out
}

/// Expands one value item into positions.
fn expand_item(item: &str, out: &mut Vec<Item>) -> Result<(), String> {
    let bad = || format!("bad value item {item:?}");
    if item.starts_with("{{") {
        let times = match item.rfind("}}") {
            Some(end) => match item[end + 2..].strip_prefix('x') {
                Some(n) => n.parse::<usize>().map_err(|_| bad())? + 1,
                None => 1,
            },
            None => return Err(bad()),
        };
        out.extend(std::iter::repeat_n(Item::Histogram, times));
        return Ok(());
    }
    if item == "_" {
        out.push(Item::Omitted);
        return Ok(());
    }
    if item == "stale" {
        out.push(Item::Float(STALE_NAN));
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| bad())?;
        out.extend(std::iter::repeat_n(Item::Omitted, n));
        return Ok(());
    }
    if let Some(v) = parse_number(item) {
        out.push(Item::Float(v));
        return Ok(());
    }
    let (expr, times) = item.rsplit_once('x').ok_or_else(bad)?;
    let times: usize = times.parse().map_err(|_| bad())?;
    // Find the operator between the start value and the delta.
    let eb = expr.as_bytes();
    let mut split = None;
    for k in 1..eb.len() {
        if (eb[k] == b'+' || eb[k] == b'-') && !matches!(eb[k - 1], b'e' | b'E') {
            split = Some(k);
            break;
        }
    }
    let (start, delta) = match split {
        Some(k) => {
            let start = parse_number(&expr[..k]).ok_or_else(bad)?;
            let mut delta = parse_number(&expr[k + 1..]).ok_or_else(bad)?;
            if eb[k] == b'-' {
                delta = -delta;
            }
            (start, delta)
        }
        None => (parse_number(expr).ok_or_else(bad)?, 0.0),
    };
    let mut v = start;
    for k in 0..=times {
        if k > 0 {
            v += delta;
        }
        out.push(Item::Float(v));
    }
    Ok(())
}

/// Parses a full series description line.
pub(crate) fn parse_series(line: &str) -> Result<SeriesDesc, String> {
    let (labels, rest) = parse_metric(line)?;
    let mut items = Vec::new();
    for item in split_items(rest) {
        expand_item(item, &mut items)?;
    }
    Ok(SeriesDesc { labels, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("10s53ms"), Ok(10_053));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn series_notation() {
        let s = parse_series(r#"foo{a="b", c='d'} 0+10x2 _ stale 1x1 _x2 5-1x1 Inf"#).unwrap();
        assert_eq!(s.labels.to_string(), r#"{__name__="foo", a="b", c="d"}"#);
        let vals: Vec<String> = s
            .items
            .iter()
            .map(|i| match i {
                Item::Omitted => "_".into(),
                Item::Float(v) if model::is_stale_nan(*v) => "stale".into(),
                Item::Float(v) => v.to_string(),
                Item::Histogram => "h".into(),
            })
            .collect();
        assert_eq!(vals.join(" "), "0 10 20 _ stale 1 1 _ _ 5 4 inf");
        let s = parse_series("foo 0x5").unwrap();
        assert_eq!(s.items.len(), 6);
        let s = parse_series("{} {{schema:1 sum:2}}x2 3").unwrap();
        assert_eq!(s.items.len(), 4);
    }
}
