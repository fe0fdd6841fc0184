//! Memory and swap from `/proc/meminfo`: one gauge per field, named as
//! node_exporter names them — `node_memory_<Field>_bytes` for fields in kB
//! (`Active(anon)` → `node_memory_Active_anon_bytes`), `node_memory_<Field>`
//! for unitless ones (`HugePages_Total`).
//!
//! Layer 5. Swap totals (`SwapTotal`, `SwapFree`, `SwapCached`) come from here,
//! as in node_exporter; swap-in/out counts come from `vmstat.rs`.

use super::{Emitter, ParseError};

/// Parses `/proc/meminfo` into `(metric name, value)` pairs, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, f64)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.is_empty() {
            continue; // some kernels print empty lines
        }
        let key = fields[0]
            .strip_suffix(':')
            .ok_or(ParseError::at(i + 1, "field name without ':'"))?;
        let mut v: f64 = fields
            .get(1)
            .ok_or(ParseError::at(i + 1, "missing value"))?
            .parse()
            .map_err(|_| ParseError::at(i + 1, "value is not a number"))?;
        // node_exporter: `\((.*)\)` → `_$1`, so "Active(anon)" → "Active_anon".
        let mut name = String::with_capacity(key.len() + 20);
        name.push_str("node_memory_");
        match key.split_once('(') {
            Some((head, rest)) if rest.ends_with(')') => {
                name.push_str(head);
                name.push('_');
                name.push_str(&rest[..rest.len() - 1]);
            }
            _ => name.push_str(key),
        }
        match fields.len() {
            2 => {}
            3 => {
                v *= 1024.0; // the unit is always kB
                name.push_str("_bytes");
            }
            _ => return Err(ParseError::at(i + 1, "unexpected number of fields")),
        }
        out.push((name, v));
    }
    Ok(out)
}

pub(crate) fn collect(text: &str, e: &mut Emitter<'_>) -> Result<(), ParseError> {
    for (name, v) in parse(text)? {
        e.emit(&name, &[], v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node_exporter() {
        let text = "MemTotal:       24684096 kB\nActive(anon):     1000 kB\nHugePages_Total:       0\n\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                ("node_memory_MemTotal_bytes".to_string(), 24684096.0 * 1024.0),
                ("node_memory_Active_anon_bytes".to_string(), 1024000.0),
                ("node_memory_HugePages_Total".to_string(), 0.0),
            ]
        );
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(parse("MemTotal 1 kB\n").is_err());
        assert!(parse("MemTotal: x kB\n").is_err());
        assert!(parse("MemTotal: 1 kB extra\n").is_err());
        assert!(parse("MemTotal:\n").is_err());
    }
}
