//! Positions for parse errors. `promql-parser` reports what is wrong but not
//! where (its grammar errors carry no span and its lexer errors no offset),
//! while Prometheus answers `1:5: parse error: unexpected end of input`. When
//! the parser rejects a query, a small tokenizer and recognizer of PromQL's
//! syntax find the first byte that cannot continue a valid query; errors the
//! recognizer cannot see (types, unknown functions) are placed at the call
//! they name, or at the start of the query. Layer 2.
//!
//! The recognizer only runs on queries the parser already refused, so it
//! errs on the side of accepting: it never decides whether a query is valid.

use crate::duration_expr::skip_string;
use crate::eval::position::{argument_offset, line_col, occurrences};

/// The message the parser gives for any grammar error.
const PARSER_GENERIC: &str = "invalid promql query";

/// Formats a parse error as Prometheus does: `line:col: parse error: message`.
pub(crate) fn with_position(query: &str, parser_message: &str) -> String {
    let (offset, message) = match locate(query) {
        Some((offset, own)) => {
            // The parser's wording is kept unless it is its generic one.
            let message = if parser_message == PARSER_GENERIC || parser_message.is_empty() {
                own
            } else {
                parser_message.to_string()
            };
            (offset, message)
        }
        None => (semantic_offset(query, parser_message), parser_message.to_string()),
    };
    let (line, col) = line_col(query, offset);
    format!("{line}:{col}: parse error: {message}")
}

/// Where an error found after parsing (a type or an argument count) is: at
/// the first argument of the function the message names, else at the first
/// non-blank byte.
fn semantic_offset(query: &str, message: &str) -> usize {
    let start = query.len() - query.trim_start().len();
    let Some(name) = named_function(message) else {
        return start;
    };
    let Some(&call) = occurrences(query, name).first() else {
        return start;
    };
    if message.starts_with("unknown function") {
        call
    } else {
        argument_offset(query, call, 0).unwrap_or(call)
    }
}

/// The function a parser message is about: `… function 'rate' …`,
/// `… function "rate" …` or `unknown function with name 'foo'`.
fn named_function(message: &str) -> Option<&str> {
    let rest = message.split_once("function ")?.1;
    let rest = rest.strip_prefix("with name ").unwrap_or(rest);
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let name = rest[1..].split(quote).next()?;
    (!name.is_empty()).then_some(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    Number,
    Str,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    /// `=`, `=~`, `!=`, `!~`: label matchers (`!=` also compares).
    MatchOp,
    /// Arithmetic, comparison (except `!=`) and `+`/`-`.
    Op,
    Eof,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    text: &'a str,
    offset: usize,
}

/// Splits a query into tokens, or gives the offset and reason of the first
/// byte that starts no token.
fn tokenize(query: &str) -> Result<Vec<Token<'_>>, (usize, String)> {
    let b = query.as_bytes();
    let mut out = Vec::new();
    let mut in_brackets = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                if i <= start + 1 || b[i - 1] != c || (c != b'`' && escaped_quote_at_end(b, start, i)) {
                    return Err((start, format!("unterminated quoted string {}", c as char)));
                }
                Tok::Str
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                Tok::Number
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(b, i);
                Tok::Number
            }
            // Inside brackets `:` separates a subquery's range and step.
            b':' if in_brackets > 0 => single(&mut i, Tok::Colon),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &query[start..i];
                if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
                    Tok::Number
                } else {
                    Tok::Ident
                }
            }
            b'(' => single(&mut i, Tok::LParen),
            b')' => single(&mut i, Tok::RParen),
            b'{' => single(&mut i, Tok::LBrace),
            b'}' => single(&mut i, Tok::RBrace),
            b'[' => {
                in_brackets += 1;
                single(&mut i, Tok::LBracket)
            }
            b']' => {
                in_brackets = in_brackets.saturating_sub(1);
                single(&mut i, Tok::RBracket)
            }
            b',' => single(&mut i, Tok::Comma),
            b'@' => single(&mut i, Tok::At),
            b'=' => match b.get(i + 1) {
                Some(b'=') => pair(&mut i, Tok::Op),
                Some(b'~') => pair(&mut i, Tok::MatchOp),
                _ => single(&mut i, Tok::MatchOp),
            },
            b'!' => match b.get(i + 1) {
                Some(b'=' | b'~') => pair(&mut i, Tok::MatchOp),
                _ => return Err((start, "unexpected character after '!'".into())),
            },
            b'<' | b'>' => match b.get(i + 1) {
                Some(b'=') => pair(&mut i, Tok::Op),
                _ => single(&mut i, Tok::Op),
            },
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => single(&mut i, Tok::Op),
            _ => {
                let ch = query[start..].chars().next().unwrap_or('?');
                return Err((start, format!("unexpected character: {ch:?}")));
            }
        };
        out.push(Token {
            kind,
            text: &query[start..i],
            offset: start,
        });
    }
    out.push(Token {
        kind: Tok::Eof,
        text: "",
        offset: b.len(),
    });
    Ok(out)
}

fn single(i: &mut usize, kind: Tok) -> Tok {
    *i += 1;
    kind
}

fn pair(i: &mut usize, kind: Tok) -> Tok {
    *i += 2;
    kind
}

/// Whether the string that `skip_string` ended at `end` only ran out of
/// input on an escaped quote (`"abc\"`).
fn escaped_quote_at_end(b: &[u8], start: usize, end: usize) -> bool {
    end == b.len() && {
        let backslashes = b[start + 1..end - 1].iter().rev().take_while(|&&c| c == b'\\').count();
        backslashes % 2 == 1
    }
}

/// The end of a number or duration literal: digits, letters (units, hex,
/// exponents), dots and an exponent's sign.
fn number_end(b: &[u8], start: usize) -> usize {
    let hex = b[start..].starts_with(b"0x") || b[start..].starts_with(b"0X");
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let exponent_sign = (c == b'+' || c == b'-') && i > start && matches!(b[i - 1], b'e' | b'E') && !hex;
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// The offset and reason of the first token that cannot continue a query,
/// or `None` when the query is syntactically fine (the error is elsewhere).
fn locate(query: &str) -> Option<(usize, String)> {
    let tokens = match tokenize(query) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    if tokens.len() == 1 {
        return Some((0, "no expression found in input".into()));
    }
    let mut r = Recognizer { tokens, pos: 0 };
    let result = r.expr().and_then(|()| match r.peek().kind {
        Tok::Eof => Ok(()),
        _ => Err(r.unexpected("")),
    });
    result.err()
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Binary operators spelled as words.
const WORD_OPS: &[&str] = &["and", "or", "unless", "atan2"];

type Found = (usize, String);

struct Recognizer<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Recognizer<'a> {
    fn peek(&self) -> Token<'a> {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token<'a> {
        let t = self.peek();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, words: &[&str]) -> bool {
        let t = self.peek();
        t.kind == Tok::Ident && words.iter().any(|w| t.text.eq_ignore_ascii_case(w))
    }

    fn unexpected(&self, context: &str) -> Found {
        let t = self.peek();
        let what = match t.kind {
            Tok::Eof => "end of input".to_string(),
            Tok::Str => "string".to_string(),
            Tok::Number => format!("number {:?}", t.text),
            Tok::Ident => format!("identifier {:?}", t.text),
            _ => format!("{:?}", t.text),
        };
        let message = if context.is_empty() {
            format!("unexpected {what}")
        } else {
            format!("unexpected {what} in {context}")
        };
        (t.offset, message)
    }

    fn expect(&mut self, kind: Tok, context: &str) -> Result<Token<'a>, Found> {
        if self.peek().kind == kind {
            Ok(self.next())
        } else {
            Err(self.unexpected(context))
        }
    }

    /// `unary (binop modifiers unary)*`; precedence does not matter for
    /// finding where a query stops making sense.
    fn expr(&mut self) -> Result<(), Found> {
        self.unary()?;
        loop {
            let t = self.peek();
            let is_op =
                matches!(t.kind, Tok::Op) || (t.kind == Tok::MatchOp && t.text == "!=") || self.is_word(WORD_OPS);
            if !is_op {
                return Ok(());
            }
            self.next();
            self.binary_modifiers()?;
            self.unary()?;
        }
    }

    fn binary_modifiers(&mut self) -> Result<(), Found> {
        if self.is_word(&["bool"]) {
            self.next();
        }
        if self.is_word(&["on", "ignoring"]) {
            self.next();
            self.label_list("grouping")?;
            if self.is_word(&["group_left", "group_right"]) {
                self.next();
                if self.peek().kind == Tok::LParen {
                    self.label_list("grouping")?;
                }
            }
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), Found> {
        while self.peek().kind == Tok::Op && matches!(self.peek().text, "+" | "-") {
            self.next();
        }
        self.primary()?;
        self.postfix()
    }

    fn primary(&mut self) -> Result<(), Found> {
        let t = self.peek();
        match t.kind {
            Tok::Number | Tok::Str => {
                self.next();
                Ok(())
            }
            Tok::LParen => {
                self.next();
                self.expr()?;
                self.expect(Tok::RParen, "paren expression").map(drop)
            }
            Tok::LBrace => self.matchers(),
            Tok::Ident if self.is_word(AGGREGATIONS) => self.aggregation(),
            Tok::Ident => {
                self.next();
                match self.peek().kind {
                    Tok::LParen => self.call_args("function call"),
                    Tok::LBrace => self.matchers(),
                    _ => Ok(()),
                }
            }
            _ => Err(self.unexpected("expression")),
        }
    }

    fn aggregation(&mut self) -> Result<(), Found> {
        self.next();
        let mut grouped = false;
        if self.is_word(&["by", "without"]) {
            self.next();
            self.label_list("grouping")?;
            grouped = true;
        }
        if self.peek().kind != Tok::LParen {
            return Err(self.unexpected("aggregation"));
        }
        self.call_args("aggregation")?;
        if !grouped && self.is_word(&["by", "without"]) {
            self.next();
            self.label_list("grouping")?;
        }
        Ok(())
    }

    /// `( [expr (, expr)*] )`
    fn call_args(&mut self, context: &str) -> Result<(), Found> {
        self.expect(Tok::LParen, context)?;
        if self.peek().kind == Tok::RParen {
            self.next();
            return Ok(());
        }
        loop {
            self.expr()?;
            match self.peek().kind {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {
                    self.next();
                    return Ok(());
                }
                _ => return Err(self.unexpected(context)),
            }
        }
    }

    /// `( [label (, label)*] [,] )`: names may be keywords or quoted.
    fn label_list(&mut self, context: &str) -> Result<(), Found> {
        self.expect(Tok::LParen, context)?;
        loop {
            match self.peek().kind {
                Tok::RParen => {
                    self.next();
                    return Ok(());
                }
                Tok::Ident | Tok::Str => {
                    self.next();
                }
                _ => return Err(self.unexpected(context)),
            }
            match self.peek().kind {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {}
                _ => return Err(self.unexpected(context)),
            }
        }
    }

    /// `{ [matcher (, matcher)*] [,] }`, a matcher being `name op "value"` or
    /// a quoted metric name alone.
    fn matchers(&mut self) -> Result<(), Found> {
        const CONTEXT: &str = "label matching";
        self.expect(Tok::LBrace, CONTEXT)?;
        loop {
            match self.peek().kind {
                Tok::RBrace => {
                    self.next();
                    return Ok(());
                }
                Tok::Ident => {
                    self.next();
                    self.expect(Tok::MatchOp, CONTEXT)?;
                    self.expect(Tok::Str, CONTEXT)?;
                }
                Tok::Str => {
                    self.next();
                    if self.peek().kind == Tok::MatchOp {
                        self.next();
                        self.expect(Tok::Str, CONTEXT)?;
                    }
                }
                _ => return Err(self.unexpected(CONTEXT)),
            }
            match self.peek().kind {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBrace => {}
                _ => return Err(self.unexpected(CONTEXT)),
            }
        }
    }

    /// Ranges, subqueries, `offset` and `@` after a primary expression.
    fn postfix(&mut self) -> Result<(), Found> {
        loop {
            match self.peek().kind {
                Tok::LBracket => {
                    self.next();
                    self.bracket_body()?;
                }
                Tok::At => {
                    self.next();
                    self.at_value()?;
                }
                Tok::Ident if self.is_word(&["offset"]) => {
                    self.next();
                    self.duration_term("offset")?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// `[range]` or `[range:step]` / `[range:]`; ranges may be duration
    /// expressions, which are checked as expressions.
    fn bracket_body(&mut self) -> Result<(), Found> {
        const CONTEXT: &str = "range or subquery";
        if matches!(self.peek().kind, Tok::RBracket | Tok::Colon) {
            return Err(self.unexpected(CONTEXT));
        }
        self.expr()?;
        if self.peek().kind == Tok::Colon {
            self.next();
            if self.peek().kind != Tok::RBracket {
                self.expr()?;
            }
        }
        self.expect(Tok::RBracket, CONTEXT).map(drop)
    }

    /// The operand of `offset`: a literal, a parenthesised expression or a
    /// call, optionally signed.
    fn duration_term(&mut self, context: &str) -> Result<(), Found> {
        while self.peek().kind == Tok::Op && matches!(self.peek().text, "+" | "-") {
            self.next();
        }
        match self.peek().kind {
            Tok::Number => {
                self.next();
                Ok(())
            }
            Tok::LParen => {
                self.next();
                self.expr()?;
                self.expect(Tok::RParen, context).map(drop)
            }
            Tok::Ident => {
                self.next();
                self.call_args(context)
            }
            _ => Err(self.unexpected(context)),
        }
    }

    /// The operand of `@`: a number or `start()` / `end()`.
    fn at_value(&mut self) -> Result<(), Found> {
        if self.is_word(&["start", "end"]) {
            self.next();
            self.expect(Tok::LParen, "@ modifier")?;
            return self.expect(Tok::RParen, "@ modifier").map(drop);
        }
        self.duration_term("@ modifier")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(query: &str) -> String {
        let message = match promql_parser::parser::parse(query) {
            Ok(_) => panic!("{query:?} parses"),
            Err(m) => m,
        };
        with_position(query, &message)
    }

    #[test]
    fn positions_of_syntax_errors() {
        assert_eq!(pos("sum(").split(": parse error").next(), Some("1:5"));
        assert_eq!(pos("rate(x[5m]").split(": parse error").next(), Some("1:11"));
        assert!(
            pos("foo{a=\"b\" c=\"d\"}").starts_with("1:11: parse error:"),
            "{}",
            pos("foo{a=\"b\" c=\"d\"}")
        );
        assert!(pos("a +").starts_with("1:4: parse error:"));
        assert!(
            pos("a\n  + * b").starts_with("2:5: parse error:"),
            "{}",
            pos("a\n  + * b")
        );
        assert!(pos("sum by (x y) (a)").starts_with("1:11: parse error:"));
        assert!(pos("a[5m").starts_with("1:5: parse error:"), "{}", pos("a[5m"));
        assert!(pos("a offset").starts_with("1:9: parse error:"));
        assert!(
            pos("rate(a[5m:step()]) +").starts_with("1:21: parse error:"),
            "{}",
            pos("rate(a[5m:step()]) +")
        );
        assert!(
            pos("a:b:c + )").starts_with("1:9: parse error:"),
            "{}",
            pos("a:b:c + )")
        );
    }

    #[test]
    fn positions_of_lexer_errors() {
        assert!(
            pos("a{b=\"c}").starts_with("1:5: parse error: unterminated quoted string"),
            "{}",
            pos("a{b=\"c}")
        );
        assert!(pos("a ! b").starts_with("1:3: parse error:"), "{}", pos("a ! b"));
        assert!(pos("a $ b").starts_with("1:3: parse error:"), "{}", pos("a $ b"));
    }

    #[test]
    fn positions_of_type_errors() {
        let p = pos("sum(rate(x))");
        assert!(p.starts_with("1:10: parse error:"), "{p}");
        assert!(p.contains("rate"), "{p}");
        assert!(
            pos("  foo + {}").starts_with("1:3: parse error:"),
            "{}",
            pos("  foo + {}")
        );
        assert_eq!(pos("1 + foo(2)"), "1:5: parse error: unknown function with name 'foo'");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for q in [
            "", "(", ")", "\"", "`", "'\\", "[", "]", "{", "}", "1e", "0x", "@", "a @", "!", "#x", "ÿ(", "a[:]",
        ] {
            let _ = with_position(q, PARSER_GENERIC);
        }
    }
}
