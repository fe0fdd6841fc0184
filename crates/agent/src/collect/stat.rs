//! System-wide counters from `/proc/stat` (node_exporter's `stat` collector):
//! `node_boot_time_seconds`, `node_context_switches_total`,
//! `node_forks_total`, `node_intr_total`, `node_procs_running`,
//! `node_procs_blocked`.
//!
//! Layer 5. CPU lines are handled by `cpu.rs`.

use super::{field_f64, Emitter, ParseError};

pub(crate) fn collect(text: &str, e: &mut Emitter<'_>) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let name = match fields.first() {
            Some(&"btime") => "node_boot_time_seconds",
            Some(&"ctxt") => "node_context_switches_total",
            Some(&"processes") => "node_forks_total",
            Some(&"intr") => "node_intr_total",
            Some(&"procs_running") => "node_procs_running",
            Some(&"procs_blocked") => "node_procs_blocked",
            _ => continue,
        };
        e.emit(name, &[], field_f64(&fields, 1, i + 1)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render};

    #[test]
    fn reads_the_six_counters() {
        let text = "cpu 1 2 3 4\nintr 1110281 0 0 5\nctxt 1801022\nbtime 1795321340\nprocesses 45889\n\
                    procs_running 6\nprocs_blocked 0\nsoftirq 1 2\n";
        let out = emit_for_test(|e| collect(text, e).unwrap());
        assert_eq!(
            render(&out),
            "{__name__=\"node_boot_time_seconds\"} 1795321340\n\
             {__name__=\"node_context_switches_total\"} 1801022\n\
             {__name__=\"node_forks_total\"} 45889\n\
             {__name__=\"node_intr_total\"} 1110281\n\
             {__name__=\"node_procs_blocked\"} 0\n\
             {__name__=\"node_procs_running\"} 6"
        );
        assert!(collect(
            "ctxt\n",
            &mut crate::collect::Emitter {
                t: 0,
                out: &mut Vec::new()
            }
        )
        .is_err());
    }
}
