//! Duration expressions (Prometheus' experimental `[5m+1m]`,
//! `offset (2*step())`, `min_of`/`max_of`), which `promql-parser` 0.11 does
//! not know: when a query fails to parse, ranges, subquery steps and offsets
//! written as arithmetic are evaluated here and replaced by plain `…ms`
//! literals, and the rewritten query is parsed again. Layer 2.
//!
//! An `offset` takes one term (a literal, a parenthesised expression, a
//! `step()`/`range()`/`min_of`/`max_of` call, optionally negated), so
//! `x offset step()*0` multiplies the selector by zero, as in Prometheus.
//! Plain numbers are seconds.

/// Rewrites duration expressions into literals. Returns `None` when the
/// query holds none (or one that cannot be evaluated).
pub(crate) fn rewrite(query: &str, step_ms: i64, range_ms: i64) -> Option<String> {
    let ctx = Ctx {
        step: step_ms as f64 / 1000.0,
        range: range_ms as f64 / 1000.0,
    };
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            let end = skip_string(b, i);
            out.push_str(&query[i..end]);
            i = end;
            continue;
        }
        if c == b'{' {
            // Label matchers: copy through the closing brace.
            let mut j = i + 1;
            while j < b.len() && b[j] != b'}' {
                if matches!(b[j], b'"' | b'\'' | b'`') {
                    j = skip_string(b, j);
                } else {
                    j += 1;
                }
            }
            let end = (j + 1).min(b.len());
            out.push_str(&query[i..end]);
            i = end;
            continue;
        }
        if c == b'[' {
            let close = matching(b, i, b'[', b']')?;
            let inner = &query[i + 1..close];
            let (range, step) = match split_top_level_colon(inner) {
                Some(k) => (&inner[..k], Some(&inner[k + 1..])),
                None => (inner, None),
            };
            out.push('[');
            changed |= push_duration(&mut out, range, &ctx)?;
            if let Some(step) = step {
                out.push(':');
                if !step.trim().is_empty() {
                    changed |= push_duration(&mut out, step, &ctx)?;
                }
            }
            out.push(']');
            i = close + 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &query[start..i];
            out.push_str(word);
            if word.eq_ignore_ascii_case("offset") {
                let ws_end = skip_ws(b, i);
                let term_end = term_end(b, ws_end)?;
                let term = &query[ws_end..term_end];
                out.push_str(&query[i..ws_end]);
                changed |= push_duration(&mut out, term, &ctx)?;
                i = term_end;
            }
            continue;
        }
        out.push(c as char);
        i += 1;
    }
    changed.then_some(out)
}

/// Parses a duration such as `5m`, `1h30m`, `10s53ms` or `0` into milliseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(format!("bad duration {s:?}"));
    }
    let b = body.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("bad duration {s:?}"));
        }
        let n: i64 = body[start..i].parse().map_err(|_| format!("bad duration {s:?}"))?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &body[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(format!("bad duration unit in {s:?}")),
        };
        total = total.saturating_add(n.saturating_mul(mult));
    }
    Ok(if neg { -total } else { total })
}

struct Ctx {
    step: f64,
    range: f64,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the quoted string starting at `start` (`"`, `'` or a
/// backtick; backticks have no escapes), or the end of `b` if unterminated.
pub(crate) fn skip_string(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn matching(b: &[u8], open_idx: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open_idx;
    while i < b.len() {
        if b[i] == open {
            depth += 1;
        } else if b[i] == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn split_top_level_colon(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (k, c) in s.bytes().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b':' if depth == 0 => return Some(k),
            _ => {}
        }
    }
    None
}

/// The end of the single term after `offset`.
fn term_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i = skip_ws(b, i + 1);
    }
    if i >= b.len() {
        return None;
    }
    if b[i] == b'(' {
        return Some(matching(b, i, b'(', b')')? + 1);
    }
    let word_start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    if i == word_start {
        return None;
    }
    let j = skip_ws(b, i);
    if j < b.len() && b[j] == b'(' && b[word_start].is_ascii_alphabetic() {
        return Some(matching(b, j, b'(', b')')? + 1);
    }
    Some(i)
}

/// Appends `text` as a duration literal; returns whether it had to be evaluated.
fn push_duration(out: &mut String, text: &str, ctx: &Ctx) -> Option<bool> {
    let trimmed = text.trim();
    if is_plain_duration(trimmed) {
        out.push_str(text);
        return Some(false);
    }
    let mut p = Parser {
        s: trimmed.as_bytes(),
        i: 0,
        ctx,
    };
    let secs = p.expr()?;
    p.ws();
    if p.i != p.s.len() || !secs.is_finite() {
        return None;
    }
    let ms = (secs * 1000.0).round() as i64;
    if ms == 0 {
        // The parser accepts only the bare `0` for a zero duration.
        out.push('0');
    } else if ms < 0 {
        out.push_str(&format!("-{}ms", ms.unsigned_abs()));
    } else {
        out.push_str(&format!("{ms}ms"));
    }
    Some(true)
}

fn is_plain_duration(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|c| c.is_ascii_alphanumeric())
        && s.bytes().any(|c| c.is_ascii_alphabetic())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    ctx: &'a Ctx,
}

impl Parser<'_> {
    fn ws(&mut self) {
        self.i = skip_ws(self.s, self.i);
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        while let Some(c) = self.peek() {
            match c {
                b'+' => {
                    self.i += 1;
                    v += self.term()?;
                }
                b'-' => {
                    self.i += 1;
                    v -= self.term()?;
                }
                _ => break,
            }
        }
        Some(v)
    }

    fn term(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        while let Some(c) = self.peek() {
            match c {
                b'*' => {
                    self.i += 1;
                    v *= self.unary()?;
                }
                b'/' => {
                    self.i += 1;
                    v /= self.unary()?;
                }
                b'%' => {
                    self.i += 1;
                    v %= self.unary()?;
                }
                _ => break,
            }
        }
        Some(v)
    }

    fn unary(&mut self) -> Option<f64> {
        match self.peek()? {
            b'-' => {
                self.i += 1;
                Some(-self.unary()?)
            }
            b'+' => {
                self.i += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.primary()?;
        if self.peek() == Some(b'^') {
            self.i += 1;
            let exp = self.unary()?;
            return Some(base.powf(exp));
        }
        Some(base)
    }

    fn primary(&mut self) -> Option<f64> {
        let c = self.peek()?;
        if c == b'(' {
            self.i += 1;
            let v = self.expr()?;
            if self.peek()? != b')' {
                return None;
            }
            self.i += 1;
            return Some(v);
        }
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
        {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if word.is_empty() {
            return None;
        }
        if word.as_bytes()[0].is_ascii_alphabetic() {
            let name = word.to_ascii_lowercase();
            if self.peek()? != b'(' {
                return None;
            }
            self.i += 1;
            let mut args = Vec::new();
            if self.peek()? != b')' {
                loop {
                    args.push(self.expr()?);
                    match self.peek()? {
                        b',' => self.i += 1,
                        b')' => break,
                        _ => return None,
                    }
                }
            }
            self.i += 1;
            return match (name.as_str(), args.as_slice()) {
                ("step", []) => Some(self.ctx.step),
                ("range", []) => Some(self.ctx.range),
                ("min_of", [a, rest @ ..]) => Some(rest.iter().fold(*a, |m, x| m.min(*x))),
                ("max_of", [a, rest @ ..]) => Some(rest.iter().fold(*a, |m, x| m.max(*x))),
                _ => None,
            };
        }
        if let Ok(v) = word.parse::<f64>() {
            return Some(v);
        }
        let ms = parse_duration(word).ok()?;
        Some(ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_ranges_and_offsets() {
        assert_eq!(rewrite("x[26m+4m]", 0, 0).as_deref(), Some("x[1800000ms]"));
        assert_eq!(rewrite("x[60*30]", 0, 0).as_deref(), Some("x[1800000ms]"));
        assert_eq!(rewrite("x[5m:step()*2]", 5000, 0).as_deref(), Some("x[5m:10000ms]"));
        assert_eq!(
            rewrite("x offset step()*0", 5000, 0).as_deref(),
            Some("x offset 5000ms*0")
        );
        assert_eq!(
            rewrite("x offset -min_of(step(), 1s)+8000", 5000, 0).as_deref(),
            Some("x offset -1000ms+8000")
        );
        assert_eq!(rewrite("x[5m] offset 1m", 0, 0), None);
        assert_eq!(rewrite(r#"x{a="[1+1]"}[5m]"#, 0, 0), None);
        // Found by the fuzzer: a duration too negative for i64 milliseconds.
        let _ = rewrite("x offset -1e300*1e300", 0, 0);
        let _ = rewrite("x offset -(9e18*1e3)", 0, 0);
    }
}
