//! Virtual memory counters from `/proc/vmstat`: `node_vmstat_<field>` for the
//! fields node_exporter exports by default (`--collector.vmstat.fields`
//! `^(oom_kill|pgpg|pswp|pg.*fault).*`): page-ins/outs, swap-ins/outs, faults,
//! OOM kills.
//!
//! Layer 5.

use std::sync::OnceLock;

use regex::Regex;

use super::{field_f64, Emitter, ParseError};

/// node_exporter's default `--collector.vmstat.fields`.
pub(crate) const DEFAULT_FIELDS: &str = r"^(oom_kill|pgpg|pswp|pg.*fault).*";

fn fields_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(DEFAULT_FIELDS).unwrap_or_else(|_| unreachable!("constant regex compiles")))
}

pub(crate) fn collect(text: &str, e: &mut Emitter<'_>) -> Result<(), ParseError> {
    let re = fields_regex();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(key) = fields.first() else { continue };
        if !re.is_match(key) {
            continue;
        }
        let v = field_f64(&fields, 1, i + 1)?;
        e.emit(&format!("node_vmstat_{key}"), &[], v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render};

    #[test]
    fn default_fields_only() {
        let text = "nr_free_pages 100\npgpgin 1\npgpgout 2\npswpin 3\npswpout 4\npgfault 5\npgmajfault 6\n\
                    oom_kill 7\npgsteal_kswapd 8\n";
        let out = emit_for_test(|e| collect(text, e).unwrap());
        assert_eq!(out.len(), 7);
        assert!(render(&out).contains("{__name__=\"node_vmstat_oom_kill\"} 7"));
    }
}
