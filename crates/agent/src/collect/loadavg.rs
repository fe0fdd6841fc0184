//! Load averages from `/proc/loadavg`: `node_load1`, `node_load5`, `node_load15`.
//!
//! Layer 5.

use super::{field_f64, Emitter, ParseError};

pub(crate) fn collect(text: &str, e: &mut Emitter<'_>) -> Result<(), ParseError> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let values = [
        field_f64(&fields, 0, 1)?,
        field_f64(&fields, 1, 1)?,
        field_f64(&fields, 2, 1)?,
    ];
    for (name, v) in ["node_load1", "node_load5", "node_load15"].into_iter().zip(values) {
        e.emit(name, &[], v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render};

    #[test]
    fn three_gauges() {
        let out = emit_for_test(|e| collect("5.03 3.47 2.12 7/133 13426\n", e).unwrap());
        assert_eq!(
            render(&out),
            "{__name__=\"node_load1\"} 5.03\n{__name__=\"node_load15\"} 2.12\n{__name__=\"node_load5\"} 3.47"
        );
        let mut sink = Vec::new();
        assert!(collect("5.03\n", &mut crate::collect::Emitter { t: 0, out: &mut sink }).is_err());
    }
}
