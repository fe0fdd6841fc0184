//! Byte escapes in string literals, as Go reads them. In Prometheus a
//! `\xNN` or octal `\NNN` escape is one byte, so `"\xc3\xbf"` is `ÿ` and
//! `"\xff"` is a string that is not UTF-8 (an invalid label name), while
//! `promql-parser` turns each such escape into the character U+00NN. Before
//! parsing, literals whose byte escapes reach 0x80 are rewritten into the
//! text Go would read, with every byte sequence that is not UTF-8 replaced
//! by U+FFFD (Rust strings hold only UTF-8), which label-name checks refuse.
//! Layer 2.

use crate::duration_expr::skip_string;

/// The character that stands for bytes that are not UTF-8.
pub(crate) const NOT_UTF8: char = char::REPLACEMENT_CHARACTER;

/// Rewrites the query's string literals that have byte escapes of 0x80 or
/// more. Returns `None` when there are none (or a literal is malformed: the
/// parser then reports it).
pub(crate) fn rewrite(query: &str) -> Option<String> {
    if !query.contains('\\') {
        return None;
    }
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut changed = false;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let end = skip_string(b, i);
                if end > i + 1 && b[end - 1] == q {
                    if let Some(text) = go_literal(&b[i + 1..end - 1], q) {
                        out.push_str(&query[copied..i]);
                        out.push_str(&text);
                        copied = end;
                        changed = true;
                    }
                }
                i = end;
            }
            b'`' => i = skip_string(b, i),
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&query[copied..]);
    Some(out)
}

/// The literal (quotes included) that `promql-parser` reads as the string
/// Go reads from `body`, if `body` has a byte escape of 0x80 or more.
fn go_literal(body: &[u8], quote: u8) -> Option<String> {
    let mut bytes = Vec::with_capacity(body.len());
    let mut high_byte = false;
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            bytes.push(c);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1)?;
        i += 2;
        match e {
            b'a' => bytes.push(0x07),
            b'b' => bytes.push(0x08),
            b'f' => bytes.push(0x0c),
            b'n' => bytes.push(b'\n'),
            b'r' => bytes.push(b'\r'),
            b't' => bytes.push(b'\t'),
            b'v' => bytes.push(0x0b),
            b'\\' | b'"' | b'\'' => bytes.push(e),
            b'x' => {
                let v = u8::from_str_radix(std::str::from_utf8(body.get(i..i + 2)?).ok()?, 16).ok()?;
                high_byte |= v >= 0x80;
                bytes.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let v = u16::from_str_radix(std::str::from_utf8(body.get(i - 1..i + 2)?).ok()?, 8).ok()?;
                let v = u8::try_from(v).ok()?;
                high_byte |= v >= 0x80;
                bytes.push(v);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = u32::from_str_radix(std::str::from_utf8(body.get(i..i + n)?).ok()?, 16).ok()?;
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            _ => return None,
        }
    }
    if !high_byte {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len() + 2);
    out.push(char::from(quote));
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == char::from(quote) => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(char::from(quote));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_escapes_read_as_go_reads_them() {
        assert_eq!(rewrite(r#"up{a="b"}"#), None);
        assert_eq!(rewrite(r#"label_replace(x, "\x41", "", "", "")"#), None);
        assert_eq!(
            rewrite(r#"label_replace(x, "\xff", "", "src", "(.*)")"#).as_deref(),
            Some("label_replace(x, \"\u{fffd}\", \"\", \"src\", \"(.*)\")")
        );
        assert_eq!(rewrite(r#"x{a="\xc3\xbf\n"}"#).as_deref(), Some("x{a=\"ÿ\\n\"}"));
        assert_eq!(rewrite(r"x{a='\303\277\''}").as_deref(), Some("x{a='ÿ\\''}"));
        // Comments and raw strings are left alone; a malformed escape is the parser's to report.
        assert_eq!(rewrite("x # \"\\xff\""), None);
        assert_eq!(rewrite(r#"x{a=`\xff`}"#), None);
        assert_eq!(rewrite(r#"x{a="\xf"}"#), None);
    }
}
