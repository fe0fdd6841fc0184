//! CPU time by mode from the `cpuN` lines of `/proc/stat`:
//! `node_cpu_seconds_total{cpu,mode}` for user, nice, system, idle, iowait,
//! irq, softirq and steal, and `node_cpu_guest_seconds_total{cpu,mode}` for
//! guest time (mode `user` and `nice`), which the kernel also counts inside
//! user and nice — node_exporter keeps it apart for that reason.
//!
//! Layer 5. Values are in `USER_HZ` ticks (100 per second on every Linux ABI;
//! read from `sysconf(_SC_CLK_TCK)`). A counter that runs backwards is held at
//! its last value, so that `rate()` never sees a false reset.

use std::collections::HashMap;

use super::{Emitter, ParseError};

const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
const GUEST_MODES: [&str; 2] = ["user", "nice"];

/// The last emitted value of each CPU counter, indexed by CPU number.
#[derive(Debug, Default)]
pub(crate) struct CpuState {
    last: HashMap<String, [f64; 10]>,
}

/// One `cpuN` line: the CPU number and its ten tick counters (missing
/// trailing fields, on old kernels, are zero).
pub(crate) fn parse_cpu_lines(text: &str) -> Result<Vec<(String, [f64; 10])>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(num) = name.strip_prefix("cpu") else { continue };
        if num.is_empty() {
            continue; // the aggregate "cpu" line
        }
        if !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::at(i + 1, "bad cpu number"));
        }
        let mut ticks = [0.0; 10];
        let mut n = 0;
        for (slot, field) in ticks.iter_mut().zip(fields) {
            *slot = field
                .parse::<u64>()
                .map_err(|_| ParseError::at(i + 1, "cpu counter is not an integer"))? as f64;
            n += 1;
        }
        if n < 4 {
            return Err(ParseError::at(i + 1, "cpu line has fewer than 4 counters"));
        }
        out.push((num.to_string(), ticks));
    }
    Ok(out)
}

fn user_hz() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

impl CpuState {
    pub(crate) fn collect(&mut self, text: &str, e: &mut Emitter<'_>) -> Result<(), ParseError> {
        let hz = user_hz();
        for (cpu, ticks) in parse_cpu_lines(text)? {
            let secs = ticks.map(|t| t / hz);
            let last = self.last.entry(cpu.clone()).or_insert(secs);
            for (l, s) in last.iter_mut().zip(secs) {
                if s > *l {
                    *l = s;
                }
            }
            let values = *last;
            for (mode, v) in MODES.iter().zip(&values[..8]) {
                e.emit("node_cpu_seconds_total", &[("cpu", &cpu), ("mode", mode)], *v);
            }
            for (mode, v) in GUEST_MODES.iter().zip(&values[8..]) {
                e.emit("node_cpu_guest_seconds_total", &[("cpu", &cpu), ("mode", mode)], *v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render};

    const STAT: &str = "cpu  300 0 200 1000 10 0 5 1 0 0\n\
                        cpu0 100 0 100 500 5 0 2 1 7 3\n\
                        cpu1 200 0 100 500 5 0 3 0 0 0\n\
                        intr 5 0 0\nctxt 10\n";

    #[test]
    fn emits_node_exporter_names() {
        let mut state = CpuState::default();
        let out = emit_for_test(|e| state.collect(STAT, e).unwrap());
        assert_eq!(out.len(), 20);
        let text = render(&out);
        let hz = user_hz();
        assert!(text.contains(&format!(
            "{{__name__=\"node_cpu_seconds_total\", cpu=\"0\", mode=\"idle\"}} {}",
            500.0 / hz
        )));
        assert!(text.contains(&format!(
            "{{__name__=\"node_cpu_guest_seconds_total\", cpu=\"0\", mode=\"user\"}} {}",
            7.0 / hz
        )));
    }

    #[test]
    fn counters_never_run_backwards() {
        let mut state = CpuState::default();
        emit_for_test(|e| state.collect("cpu0 100 0 100 500 5 0 2 1 0 0\n", e).unwrap());
        let out = emit_for_test(|e| state.collect("cpu0 100 0 100 400 5 0 2 1 0 0\n", e).unwrap());
        let idle = out.iter().find(|(l, _)| l.get("mode") == Some("idle")).unwrap();
        assert_eq!(idle.1.v, 500.0 / user_hz());
    }

    #[test]
    fn bad_content_is_an_error_not_a_panic() {
        assert!(parse_cpu_lines("cpu0 1 2\n").is_err());
        assert!(parse_cpu_lines("cpu0 a b c d\n").is_err());
        assert!(parse_cpu_lines("cpuX 1 2 3 4\n").is_err());
        assert_eq!(parse_cpu_lines("").unwrap(), vec![]);
    }
}
