//! Label matchers as PromQL writes them: `=`, `!=`, `=~`, `!~`.

use regex::Regex;
use std::fmt;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, a fully anchored RE2 regular expression.
    RegexMatch,
    /// `!~`
    RegexNoMatch,
}

/// A matcher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {source}")]
    BadRegex {
        /// The pattern as given.
        pattern: String,
        /// What the regex engine said.
        #[source]
        source: regex::Error,
    },
}

/// Matches one label of a series. A missing label matches as the empty string,
/// as in Prometheus.
///
/// Regexes are anchored at both ends and `.` matches newlines (Prometheus 3).
#[derive(Clone)]
pub struct Matcher {
    name: String,
    value: String,
    op: MatchOp,
    // Invariant: Some exactly when op is RegexMatch or RegexNoMatch.
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `=~`/`!~`.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let anchored = format!("^(?s:{value})$");
                Some(Regex::new(&anchored).map_err(|source| MatcherError::BadRegex {
                    pattern: value.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(Matcher { name, value, op, regex })
    }

    /// Shorthand for an `=` matcher, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            value: value.into(),
            op: MatchOp::Equal,
            regex: None,
        }
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value or pattern as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// Tells whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Tells whether the matcher matches the empty string, i.e. series that
    /// lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~`, the alternatives when the pattern is a plain `a|b|c` list of
    /// literals (a common Grafana variable expansion), so that an index can
    /// look them up directly instead of scanning values.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if self.op != MatchOp::RegexMatch {
            return None;
        }
        let special = |c: char| "\\.+*?()[]{}^$|".contains(c);
        let alts: Vec<&str> = self.value.split('|').collect();
        if alts.iter().any(|a| a.chars().any(special)) {
            return None;
        }
        Some(alts.into_iter().map(str::to_string).collect())
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value && self.op == other.op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "fo.").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(m.matches("fo\n"));
        let n = Matcher::new(MatchOp::RegexNoMatch, "a", "").unwrap();
        assert!(!n.matches(""));
        assert!(n.matches("x"));
    }

    #[test]
    fn set_matches_only_for_literal_alternations() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "x|y|z").unwrap();
        assert_eq!(m.set_matches(), Some(vec!["x".into(), "y".into(), "z".into()]));
        let m = Matcher::new(MatchOp::RegexMatch, "a", "x.*").unwrap();
        assert_eq!(m.set_matches(), None);
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchOp::RegexMatch, "a", "(").is_err());
    }
}
