//! Network interface counters from `/proc/net/dev`:
//! `node_network_{receive,transmit}_<field>_total{device}` with the kernel's
//! column names (bytes, packets, errs, drop, fifo, frame, compressed,
//! multicast; colls, carrier), which are also what node_exporter emits, plus
//! `node_network_receive_nohandler_total` from
//! `/sys/class/net/<dev>/statistics/rx_nohandler` where the kernel has it.
//!
//! Layer 5.

use std::path::Path;

use regex::Regex;

use super::{Emitter, ParseError};

const RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// Parses `/proc/net/dev` into `(device, 16 counters)`.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, [f64; 16])>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let (dev, rest) = line
            .split_once(':')
            .ok_or(ParseError::at(i + 1, "interface line without ':'"))?;
        let mut values = [0.0; 16];
        let mut n = 0;
        for (slot, f) in values.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = f
                .parse::<u64>()
                .map_err(|_| ParseError::at(i + 1, "interface counter is not an integer"))? as f64;
            n += 1;
        }
        if n != 16 {
            return Err(ParseError::at(i + 1, "interface line has not 16 counters"));
        }
        out.push((dev.trim().to_string(), values));
    }
    Ok(out)
}

pub(crate) fn collect(
    text: &str,
    exclude: Option<&Regex>,
    sys_path: &Path,
    e: &mut Emitter<'_>,
) -> Result<(), ParseError> {
    let mut name = String::with_capacity(64);
    for (dev, values) in parse(text)? {
        if exclude.is_some_and(|re| re.is_match(&dev)) {
            continue;
        }
        let labels = [("device", dev.as_str())];
        for (dir, fields, values) in [("receive", RECEIVE, &values[..8]), ("transmit", TRANSMIT, &values[8..])] {
            for (field, v) in fields.iter().zip(values) {
                name.clear();
                name.push_str("node_network_");
                name.push_str(dir);
                name.push('_');
                name.push_str(field);
                name.push_str("_total");
                e.emit(&name, &labels, *v);
            }
        }
        let nohandler = sys_path.join("class/net").join(&dev).join("statistics/rx_nohandler");
        if let Some(v) = std::fs::read_to_string(nohandler)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            e.emit("node_network_receive_nohandler_total", &labels, v as f64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render};

    const DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 21513906    8337    0    0    0     0          0         0 21513906    8337    0    0    0     0       0          0\n  \
eth0: 259109865   13131    1    2    3     4          5         6   843533    7901    7    8    9    10       11          12\n";

    #[test]
    fn sixteen_counters_per_device() {
        let re = Regex::new("^lo$").unwrap();
        let out = emit_for_test(|e| collect(DEV, Some(&re), Path::new("/nonexistent"), e).unwrap());
        assert_eq!(out.len(), 16);
        let text = render(&out);
        assert!(text.contains("{__name__=\"node_network_receive_bytes_total\", device=\"eth0\"} 259109865"));
        assert!(text.contains("{__name__=\"node_network_transmit_colls_total\", device=\"eth0\"} 10"));
        assert!(text.contains("{__name__=\"node_network_transmit_carrier_total\", device=\"eth0\"} 11"));
        assert!(text.contains("{__name__=\"node_network_receive_multicast_total\", device=\"eth0\"} 6"));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(parse("h\nh\neth0 1 2\n").is_err());
        assert!(parse("h\nh\neth0: 1 2\n").is_err());
        assert!(parse("h\nh\neth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n").is_err());
    }
}
