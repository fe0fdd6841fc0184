//! Block device I/O from `/proc/diskstats`, under node_exporter's
//! `node_disk_*{device}` names: completed/merged reads and writes, bytes
//! (sectors × 512, the unit the kernel always uses in this file), time spent
//! (ms → seconds), I/Os in progress, discards (kernel 4.18+) and flushes
//! (5.5+). Devices matching the exclude regex (partitions, loop, ram) are
//! left out.
//!
//! Layer 5. `node_disk_info` (udev data) is not produced.

use regex::Regex;

use super::{Emitter, ParseError};

/// Bytes per sector in `/proc/diskstats`, whatever the device's real sector size.
const SECTOR_BYTES: f64 = 512.0;

/// The metric for each numeric field after `major minor name`, with the
/// factor that converts it to the metric's unit.
const FIELDS: [(&str, f64); 17] = [
    ("node_disk_reads_completed_total", 1.0),
    ("node_disk_reads_merged_total", 1.0),
    ("node_disk_read_bytes_total", SECTOR_BYTES),
    ("node_disk_read_time_seconds_total", 0.001),
    ("node_disk_writes_completed_total", 1.0),
    ("node_disk_writes_merged_total", 1.0),
    ("node_disk_written_bytes_total", SECTOR_BYTES),
    ("node_disk_write_time_seconds_total", 0.001),
    ("node_disk_io_now", 1.0),
    ("node_disk_io_time_seconds_total", 0.001),
    ("node_disk_io_time_weighted_seconds_total", 0.001),
    ("node_disk_discards_completed_total", 1.0),
    ("node_disk_discards_merged_total", 1.0),
    ("node_disk_discarded_sectors_total", 1.0),
    ("node_disk_discard_time_seconds_total", 0.001),
    ("node_disk_flush_requests_total", 1.0),
    ("node_disk_flush_requests_time_seconds_total", 0.001),
];

pub(crate) fn collect(text: &str, exclude: &Regex, e: &mut Emitter<'_>) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 14 {
            return Err(ParseError::at(i + 1, "diskstats line has fewer than 14 fields"));
        }
        let device = fields[2];
        if exclude.is_match(device) {
            continue;
        }
        let mut values = Vec::with_capacity(17);
        for f in &fields[3..] {
            values.push(
                f.parse::<u64>()
                    .map_err(|_| ParseError::at(i + 1, "diskstats counter is not an integer"))? as f64,
            );
        }
        // Discards come as a group of four, flushes as a group of two: emit
        // only complete groups, as node_exporter does.
        let n = match values.len() {
            n if n >= 17 => 17,
            n if n >= 15 => 15,
            _ => 11,
        };
        for ((name, factor), v) in FIELDS.iter().zip(&values[..n]) {
            e.emit(name, &[("device", device)], v * factor);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{emit_for_test, render, DEFAULT_DISK_DEVICE_EXCLUDE};

    #[test]
    fn converts_units_and_excludes_partitions() {
        let text = " 254       0 vda 183520 28205 10121946 342299 28988 63035 18165096 116816 0 33612 463213 13430 64 4614552 3798 2486 298\n\
                    254       1 vda1 1 1 1 1 1 1 1 1 0 1 1 1 1 1 1 1 1\n\
                      7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
                      8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n";
        let re = Regex::new(DEFAULT_DISK_DEVICE_EXCLUDE).unwrap();
        let out = emit_for_test(|e| collect(text, &re, e).unwrap());
        assert_eq!(out.len(), 17 + 11);
        let text = render(&out);
        assert!(text.contains("{__name__=\"node_disk_read_bytes_total\", device=\"vda\"} 5182436352"));
        assert!(text.contains("{__name__=\"node_disk_io_time_seconds_total\", device=\"vda\"} 33.612"));
        assert!(text.contains("{__name__=\"node_disk_flush_requests_total\", device=\"vda\"} 2486"));
        assert!(!text.contains("sda\"} 9\n{__name__=\"node_disk_discard"));
        assert!(!text.contains("vda1"));
    }

    #[test]
    fn short_or_bad_lines_are_errors() {
        let re = Regex::new("^$").unwrap();
        let mut sink = Vec::new();
        let mut e = crate::collect::Emitter { t: 0, out: &mut sink };
        assert!(collect("8 0 sda 1 2 3\n", &re, &mut e).is_err());
        assert!(collect("8 0 sda 1 2 3 4 5 6 7 8 9 x 11\n", &re, &mut e).is_err());
    }
}
