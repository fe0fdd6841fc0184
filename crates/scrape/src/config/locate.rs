//! Line numbers for configuration errors that serde cannot place. A value
//! error inside a job (`scrape_interval: nope`) comes out of `serde_norway`
//! with the position of the job, not of the field, and validation errors
//! ([`ConfigError::Invalid`]) have no position at all; both are placed here
//! by looking for the field in the job's lines of the original text.

use super::ConfigError;

/// Puts the line, column and field of the offending value into `err`.
pub(super) fn place(text: &str, err: ConfigError) -> ConfigError {
    match err {
        ConfigError::Yaml(message) => ConfigError::Yaml(place_yaml(text, &message).unwrap_or(message)),
        ConfigError::Invalid { job, field, reason } => match place_invalid(text, &job, &field) {
            Some((line, col)) => ConfigError::Invalid {
                job,
                field: format!("line {line}, column {col}: {field}"),
                reason,
            },
            None => ConfigError::Invalid { job, field, reason },
        },
        other => other,
    }
}

/// `path: message "value" at line L column C`, where L is the job's line:
/// finds `value` among the job's lines.
fn place_yaml(text: &str, message: &str) -> Option<String> {
    let (head, position) = message.rsplit_once(" at line ")?;
    let start_line: usize = position.split_whitespace().next()?.parse().ok()?;
    let value = quoted(head)?;
    let lines: Vec<&str> = text.lines().collect();
    let block = block_of(&lines, start_line.checked_sub(1)?);
    for (i, line) in block {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let raw = rest.trim();
        let unquoted = raw.trim_matches(|c| c == '"' || c == '\'');
        if unquoted == value || raw.contains(value.as_str()) {
            let key = key.trim().trim_start_matches("- ").trim();
            let col = line.len() - rest.trim_start().len() + 1;
            let path = head.split_once(": ").map_or("", |(p, _)| p);
            let reason = head.split_once(": ").map_or(head, |(_, r)| r);
            return Some(format!("line {}, column {col}: {path}: field {key:?}: {reason}", i + 1));
        }
    }
    None
}

/// Where `field` (e.g. `static_configs[0].targets`) of job `job` is written.
fn place_invalid(text: &str, job: &str, field: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let job_line = lines.iter().position(|l| {
        l.trim_start()
            .trim_start_matches("- ")
            .strip_prefix("job_name:")
            .is_some_and(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == job)
    })?;
    let key = field.rsplit('.').next()?.split('[').next()?;
    let (i, line) = block_of(&lines, job_line).find(|(_, l)| {
        l.trim_start()
            .trim_start_matches("- ")
            .split_once(':')
            .is_some_and(|(k, _)| k.trim() == key)
    })?;
    Some((i + 1, line.len() - line.trim_start().len() + 1))
}

/// The lines of the sequence item starting at `first` (0-based): up to the
/// next item at the same indentation or a line indented less.
fn block_of<'a>(lines: &'a [&'a str], first: usize) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = lines.get(first).map_or(0, |l| indent(l));
    lines
        .iter()
        .enumerate()
        .skip(first)
        .take_while(move |(i, l)| {
            *i == first
                || l.trim().is_empty()
                || l.trim_start().starts_with('#')
                || indent(l) > base
                || (indent(l) == base
                    && !l.trim_start().starts_with("- ")
                    && !lines[first].trim_start().starts_with("- "))
        })
        .map(|(i, l)| (i, *l))
}

/// The first `"…"` in a message, unescaped (only `\"` and `\\`).
fn quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let mut out = String::new();
    let mut chars = message[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::ScrapeConfigs;

    fn err(text: &str) -> String {
        match ScrapeConfigs::from_yaml(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn value_errors_name_the_line_and_field() {
        let text = "scrape_configs:\n  - job_name: x\n    static_configs:\n      - targets: [a:1]\n    scrape_interval: nope\n";
        let e = err(text);
        assert!(
            e.starts_with("line 5, column 22: scrape_configs[0]: field \"scrape_interval\": "),
            "{e}"
        );
        assert!(e.contains("\"nope\""), "{e}");
    }

    #[test]
    fn second_job_errors_point_into_that_job() {
        let text =
            "scrape_configs:\n  - job_name: a\n    scrape_timeout: 5s\n  - job_name: b\n    scrape_timeout: 5x\n";
        let e = err(text);
        assert!(e.starts_with("line 5, column 21: "), "{e}");
    }

    #[test]
    fn validation_errors_name_the_line() {
        let text = "scrape_configs:\n  - job_name: x\n    scheme: ftp\n";
        let e = err(text);
        assert!(e.contains("line 3, column 5"), "{e}");
    }
}
