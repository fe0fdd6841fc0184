//! `haetae promql-test DIR...`: runs Prometheus' PromQL test scripts
//! (`*.test`) through the engine and prints a report.
//!
//! Layer 5, a thin shell over `promql::test_script`. The report has one line
//! per failing eval (`file:line: expr: expected …, got …`), one line per
//! file that could not be run, the skipped evals grouped by reason, and
//! ends with exactly one line `N passed, N failed, N skipped`. A file that
//! cannot be read or parsed counts as one failed eval, so it cannot go
//! unnoticed.

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Eval counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Evals whose results matched.
    pub passed: usize,
    /// Evals that did not match, plus files that could not be run.
    pub failed: usize,
    /// Evals that need an unsupported feature.
    pub skipped: usize,
}

/// The `*.test` files of `path`: the file itself, or a directory's files in name order.
fn test_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    Ok(files)
}

/// Keeps a multi-line expectation on one report line.
fn one_line(s: &str) -> String {
    s.trim().lines().map(str::trim).collect::<Vec<_>>().join(" | ")
}

/// Runs every test file under `paths` and writes the report to `out`.
pub fn run(paths: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<Summary> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(test_files(p)?);
    }
    let mut summary = Summary::default();
    let mut skipped_by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let report = promql::test_script::run_file(file, promql::EngineOptions::default());
        for eval in &report.evals {
            match &eval.outcome {
                promql::test_script::EvalOutcome::Passed => summary.passed += 1,
                promql::test_script::EvalOutcome::Failed { expected, got } => {
                    summary.failed += 1;
                    writeln!(
                        out,
                        "{}:{}: {}: expected {}, got {}",
                        file.display(),
                        eval.line,
                        eval.expr,
                        one_line(expected),
                        one_line(got)
                    )?;
                }
                promql::test_script::EvalOutcome::Skipped { reason } => {
                    summary.skipped += 1;
                    *skipped_by_reason.entry(reason.clone()).or_insert(0) += 1;
                }
            }
        }
        if let Some(err) = &report.error {
            summary.failed += 1;
            writeln!(out, "{}: cannot run: {}", file.display(), one_line(err))?;
        }
    }
    if !skipped_by_reason.is_empty() {
        let mut reasons: Vec<(String, usize)> = skipped_by_reason.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        writeln!(out, "skipped evals by reason:")?;
        for (reason, n) in reasons {
            writeln!(out, "  {n:6}  {reason}")?;
        }
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.skipped
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_failures_skips_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.test"),
            "load 1m\n  m{a=\"1\"} 1 2 3\n\neval instant at 2m m\n  m{a=\"1\"} 3\n\neval instant at 2m m\n  m{a=\"1\"} 4\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "not a test").unwrap();
        let mut out = Vec::new();
        let s = run(&[dir.path().to_path_buf()], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!((s.passed, s.failed), (1, 1), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("a.test:7: m: expected"), "{text}");
        assert_eq!(lines.last().copied(), Some("1 passed, 1 failed, 0 skipped"));
        assert!(run(&[dir.path().join("missing")], &mut Vec::new()).is_err());
    }
}
