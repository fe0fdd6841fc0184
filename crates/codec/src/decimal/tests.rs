use super::*;
use crate::xor::tests::{any_f64, any_timestamps};
use proptest::prelude::*;

fn samples(pairs: &[(i64, f64)]) -> Vec<Sample> {
    pairs.iter().map(|&(t, v)| Sample::new(t, v)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn round_trip(input: &[Sample]) -> Vec<u8> {
    let mut out = vec![0xAB, 0xCD];
    encode_chunk(input, &mut out);
    assert_eq!(out[..2], [0xAB, 0xCD]);
    let mut decoded = vec![Sample::new(7, 7.0)];
    let consumed = decode_chunk(&out[2..], &mut decoded).unwrap();
    assert_eq!(consumed, out.len() - 2);
    assert_eq!(decoded.len(), input.len() + 1);
    assert!(decoded[0].bit_eq(&Sample::new(7, 7.0)));
    for (got, want) in decoded[1..].iter().zip(input) {
        assert!(got.bit_eq(want), "{got:?} != {want:?}");
    }
    let bytes = out.split_off(2);
    for (start, end) in ranges_of(input) {
        check_range(&bytes, start, end);
    }
    bytes
}

/// Checks that [`decode_chunk_range`] gives what [`decode_chunk`] and a filter give:
/// the same samples, length, or failure.
fn check_range(bytes: &[u8], start: i64, end: i64) {
    let mut all = Vec::new();
    let full = decode_chunk(bytes, &mut all);
    let mut got = vec![Sample::new(7, 7.0)];
    let ranged = decode_chunk_range(bytes, start, end, &mut got);
    match (full, ranged) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "bytes consumed, range {start}..={end}");
            let want: Vec<Sample> = all.into_iter().filter(|s| (start..=end).contains(&s.t)).collect();
            assert_eq!(got.len(), want.len() + 1, "range {start}..={end}");
            assert!(got[0].bit_eq(&Sample::new(7, 7.0)));
            for (g, w) in got[1..].iter().zip(&want) {
                assert!(g.bit_eq(w), "{g:?} != {w:?}, range {start}..={end}");
            }
        }
        (Err(_), Err(_)) => assert_eq!(got.len(), 1, "left in out on error"),
        (full, ranged) => panic!("decode_chunk {full:?} but decode_chunk_range {ranged:?}, range {start}..={end}"),
    }
}

/// Ranges to read a chunk of `input` with: all, none, before and after its samples,
/// single samples, the last 20 (an instant query), runs across group boundaries, and
/// the same runs less their end points.
fn ranges_of(input: &[Sample]) -> Vec<(i64, i64)> {
    let mut ranges = vec![(i64::MIN, i64::MAX), (1, 0), (i64::MAX, i64::MIN)];
    let mut ts: Vec<i64> = input.iter().map(|s| s.t).collect();
    ts.sort_unstable();
    let n = ts.len();
    if n == 0 {
        return ranges;
    }
    ranges.push((i64::MIN, ts[0].saturating_sub(1)));
    ranges.push((ts[n - 1].saturating_add(1), i64::MAX));
    let last = n - 1;
    let runs = [
        (0, 0),
        (last, last),
        (n / 2, n / 2),
        (n.saturating_sub(20), last),
        (n / 3, 2 * n / 3),
        (1.min(last), 33.min(last)),
        (32.min(last), 64.min(last)),
        (31.min(last), 32.min(last)),
        (n / 2, last),
        (0, n / 2),
    ];
    for (a, b) in runs {
        ranges.push((ts[a], ts[b]));
        ranges.push((ts[a].saturating_add(1), ts[b].saturating_sub(1)));
    }
    ranges
}

#[test]
fn empty_chunk() {
    assert_eq!(hex(&round_trip(&[])), "30 00");
}

/// Decodes `hex_bytes` and checks it gives `want` (chunks written by older versions).
fn decodes_to(hex_bytes: &str, want: &[Sample]) {
    let bytes: Vec<u8> = hex_bytes
        .split(' ')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let mut got = Vec::new();
    assert_eq!(decode_chunk(&bytes, &mut got).unwrap(), bytes.len());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(g.bit_eq(w), "{g:?} != {w:?}");
    }
}

#[test]
fn older_chunk_versions_still_decode() {
    // Exact bytes written by version 1 (before scaling and blocked packing).
    decodes_to("10 00", &[]);
    decodes_to(
        "14 03 d0 0f b0 ea 01 fe fa 01 32 32 00",
        &samples(&[(1000, 1.25), (16000, 1.5), (31000, 1.75)]),
    );
    decodes_to(
        "10 05 00 14 14 13 00 02 02 04 06 00 08 01 03 02 00 00 00 00 00 f0 7f",
        &samples(&[
            (0, 100.0),
            (10, 300.0),
            (30, 600.0),
            (40, model::STALE_NAN),
            (50, 1000.0),
        ]),
    );
    // Version 1 XOR values have no kind byte: (0, 1.0), (1, 1.0).
    decodes_to(
        "12 02 00 02 3f f0 00 00 00 00 00 00 00",
        &samples(&[(0, 1.0), (1, 1.0)]),
    );
    // Version 2, blocked deltas with one sparse group whose items have a fixed width:
    // values 10, 10, 13, 10, 15 → exp 0 (00), kind 2 (02), m0 = 10 (14), deltas 0, 3, -3, 5:
    // base -3 (05), W = 4 (04), common 0 = base + 3 (03); group: sparse (10), width 4
    // (000100), bitmap 0111, items 6, 0, 8 in 4 bits → 84 76 08; no exceptions.
    decodes_to(
        "27 05 00 02 00 02 14 05 04 03 84 76 08 00",
        &samples(&[(0, 10.0), (1, 10.0), (2, 13.0), (3, 10.0), (4, 15.0)]),
    );
    // The scaled flag does not exist in version 1.
    let mut out = Vec::new();
    assert!(decode_chunk(&[0x18, 0x01, 0x00, 0x00, 0x02, 0x00], &mut out).is_err());
}

#[test]
fn exact_bytes_constant_interval_two_decimals() {
    // 3c: version 3, scaled, constant interval | 03 n | timestamps: varint(1000)=d0 0f,
    // varint(15000)=b0 ea 01 | values 1.25, 1.50, 1.75 → exp -2 (fe), mantissas 125,150,175,
    // all 125 + 25 × k: scale 25 (19), stored 125, 126, 127:
    //   delta: fa 01 (125), 02, 02 = 4 bytes; dod: fa 01, 02, 00 = 4 bytes → delta wins ties
    //   then 00 (no exceptions).
    let bytes = round_trip(&samples(&[(1000, 1.25), (16000, 1.5), (31000, 1.75)]));
    assert_eq!(hex(&bytes), "3c 03 d0 0f b0 ea 01 fe 19 fa 01 02 02 00");
}

#[test]
fn exact_bytes_dod_values_and_exceptions() {
    // Irregular timestamps 0, 10, 30, 40, 50: varint(0)=00, first delta varint(10)=14,
    // then dods +10, -10, 0 = 14 13 00.
    // Values 100, 300, 600, NaN-stale, 1000 → integers with trailing zeros: exp 2 (02),
    // mantissas 1, 3, 6, 6 (placeholder), 10.
    //   delta: 02 04 06 00 08 = 5 bytes; dod: 02 04 02 (-3→05) ... 02 04 02 05 08 = 5 → delta.
    // Exceptions: 01, index 3 → 03, raw stale bits little-endian 02 00 00 00 00 00 f0 7f.
    let input = samples(&[
        (0, 100.0),
        (10, 300.0),
        (30, 600.0),
        (40, model::STALE_NAN),
        (50, 1000.0),
    ]);
    let bytes = round_trip(&input);
    assert_eq!(
        hex(&bytes),
        "30 05 00 14 14 13 00 02 02 04 06 00 08 01 03 02 00 00 00 00 00 f0 7f"
    );
}

#[test]
fn packs_the_deltas_of_steady_counters() {
    let input: Vec<Sample> = (0..100)
        .map(|i| Sample::new(i * 15_000, 12_345.67 + i as f64 * 15.25 + (i % 3) as f64 * 0.01))
        .collect();
    let bytes = round_trip(&input);
    assert_eq!(
        bytes[0],
        0x30 | FLAG_CONSTANT_INTERVAL | ValueEncoding::DecimalPacked as u8
    );
    assert!(bytes.len() < 120, "{}", bytes.len());
}

#[test]
fn float_arithmetic_results_fall_back_to_xor() {
    let input: Vec<Sample> = (0..50).map(|i| Sample::new(i, (i as f64 + 0.1) / 3.0)).collect();
    let bytes = round_trip(&input);
    assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::Xor as u8);
    // Mode, n = 50, t0 = 0, Δ0 = 1, then the float kind byte.
    assert!([FLOAT_XOR, FLOAT_BLOCKED].contains(&bytes[4]), "{}", hex(&bytes));
}

/// A tiny deterministic generator for the layout tests.
fn lcg(x: &mut u64) -> u64 {
    *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *x >> 33
}

#[test]
fn constant_series_take_a_few_bytes() {
    // 4096 samples, the most a block chunk holds, in far fewer bytes than samples.
    for v in [0.0, 1.0, 9_223_372_036_854_775_807.0, 0.25] {
        let input: Vec<Sample> = (0..4096).map(|i| Sample::new(i * 15_000, v)).collect();
        let bytes = round_trip(&input);
        assert!(bytes.len() < 160, "{v}: {}", bytes.len());
    }
    let input: Vec<Sample> = (0..4096).map(|i| Sample::new(i * 15_000, f64::NAN)).collect();
    round_trip(&input);
}

#[test]
fn page_gauges_are_scaled_and_sparse() {
    // Memory in 4 KiB pages, unchanged 40 % of the time, else ±300 pages.
    let mut x = 7;
    let mut v = 8_000_000_000.0f64;
    let input: Vec<Sample> = (0..480)
        .map(|i| {
            if lcg(&mut x) % 10 >= 4 {
                v += ((lcg(&mut x) % 601) as f64 - 300.0) * 4096.0;
            }
            Sample::new(i * 15_000, v)
        })
        .collect();
    let bytes = round_trip(&input);
    assert_eq!(bytes[0] & FLAG_SCALED, FLAG_SCALED);
    assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::DecimalPacked as u8);
    // A bit per sample plus 10 bits per change, and headers.
    assert!(bytes.len() < 480 * (1 + 6) / 8 + 80, "{}", bytes.len());
}

#[test]
fn bursty_counters_pack_in_groups() {
    // Increments whose rate jumps by 30x now and then.
    let mut x = 11;
    let mut v = 1e9;
    let input: Vec<Sample> = (0..480)
        .map(|i| {
            let rate = if (i / 100) % 2 == 0 { 1000 } else { 30_000 };
            v += (rate + lcg(&mut x) % rate) as f64;
            Sample::new(i * 15_000, v)
        })
        .collect();
    let bytes = round_trip(&input);
    assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::DecimalPacked as u8);
    // About 10 bits per sample at the low rate and 15 at the high one, not 16 for all.
    assert!(bytes.len() < (280 * 11 + 200 * 16) / 8 + 80, "{}", bytes.len());
}

#[test]
fn uniform_noise_costs_its_range_not_its_width() {
    // Increments uniform in 1000..1600 (600 values, 9.2 bits; the width is 10).
    let mut x = 5;
    let mut v = 5e6;
    let input: Vec<Sample> = (0..480)
        .map(|i| {
            v += (1000 + lcg(&mut x) % 600) as f64;
            Sample::new(i * 15_000, v)
        })
        .collect();
    let bytes = round_trip(&input);
    assert!(bytes.len() < 480 * 95 / 80 + 40, "{}", bytes.len());
}

#[test]
fn clocks_in_seconds_pack_their_float_bits() {
    // A scrape time in seconds with sub-millisecond jitter: no short decimal.
    let mut x = 3;
    let input: Vec<Sample> = (0..480)
        .map(|i| {
            let t = 1_795_000_000_000 + i * 15_000;
            Sample::new(t, (t as f64 + (lcg(&mut x) % 3000) as f64 / 1000.0) / 1000.0)
        })
        .collect();
    let bytes = round_trip(&input);
    assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::Xor as u8);
    let kind_at = 1 + 2 + 6 + 3;
    assert_eq!(bytes[kind_at], FLOAT_BLOCKED, "{}", hex(&bytes[..16]));
    assert!(bytes.len() < 480 * 2 + 40, "{}", bytes.len());
}

#[test]
fn special_values_round_trip() {
    let specials = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        model::STALE_NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::MIN_POSITIVE / 7.0,
        f64::MAX,
        f64::MIN,
        1e22,
        1e23,
        123_456_789_012_345_680.0,
        0.1 + 0.2,
        9_007_199_254_740_993.0,
        -1.5e-22,
    ];
    for (i, &v) in specials.iter().enumerate() {
        round_trip(&samples(&[(0, v)]));
        round_trip(&samples(&[(0, 1.5), (1, v), (2, 2.5)]));
        let mixed: Vec<Sample> = (0..20)
            .map(|j| Sample::new(j, if j % 4 == i as i64 % 4 { v } else { j as f64 }))
            .collect();
        round_trip(&mixed);
    }
}

#[test]
fn concatenated_chunks_decode_in_sequence() {
    let a = samples(&[(1, 1.0), (2, 2.0)]);
    let b = samples(&[(5, f64::NAN)]);
    let mut buf = Vec::new();
    encode_chunk(&a, &mut buf);
    encode_chunk(&b, &mut buf);
    let mut out = Vec::new();
    let used = decode_chunk(&buf, &mut out).unwrap();
    let used2 = decode_chunk(&buf[used..], &mut out).unwrap();
    assert_eq!(used + used2, buf.len());
    assert_eq!(out.len(), 3);
}

#[test]
fn truncation_is_an_error_and_leaves_out_untouched() {
    let input: Vec<Sample> = (0..30)
        .map(|i| Sample::new(i * 1000 + i * i, if i == 7 { f64::NAN } else { i as f64 }))
        .collect();
    let mut bytes = Vec::new();
    encode_chunk(&input, &mut bytes);
    for cut in 0..bytes.len() {
        let mut out = vec![Sample::new(1, 1.0)];
        assert!(decode_chunk(&bytes[..cut], &mut out).is_err(), "cut {cut}");
        assert_eq!(out.len(), 1);
    }
}

proptest! {
    #[test]
    fn round_trip_bit_exact(ts in any_timestamps(400), vs in proptest::collection::vec(any_f64(), 400)) {
        let input: Vec<Sample> = ts.iter().zip(&vs).map(|(&t, &v)| Sample::new(t, v)).collect();
        round_trip(&input);
    }

    #[test]
    fn decimal_series_round_trip(
        ts in any_timestamps(300),
        start in -1_000_000_000i64..1_000_000_000,
        steps in proptest::collection::vec(-5000i64..5000, 300),
        exp in -6i32..4,
    ) {
        let mut m = start;
        let input: Vec<Sample> = ts.iter().zip(&steps).map(|(&t, &s)| {
            m += s;
            Sample::new(t, decimal_to_f64(m, exp))
        }).collect();
        round_trip(&input);
    }

    #[test]
    fn blocked_layouts_round_trip(
        start in -1_000_000_000_000i64..1_000_000_000_000,
        steps in proptest::collection::vec((0u32..8, 0i64..1_000_000), 1..700),
        scale in prop_oneof![Just(1i64), Just(4096), 1i64..1000],
        exp in -4i32..3,
    ) {
        // Runs of unchanged values, small and large moves, rate changes and resets.
        let mut m = start;
        let input: Vec<Sample> = steps.iter().enumerate().map(|(i, &(kind, x))| {
            m = walk_step(m, kind, x);
            Sample::new(i as i64 * 15_000, decimal_to_f64(m * scale, exp))
        }).collect();
        round_trip(&input);
    }

    #[test]
    fn float_bits_round_trip(start in any::<u64>(), steps in proptest::collection::vec(-100_000i64..100_000, 1..200)) {
        let mut bits = start;
        let input: Vec<Sample> = steps.iter().enumerate().map(|(i, &d)| {
            bits = bits.wrapping_add(d as u64);
            Sample::new(i as i64, f64::from_bits(bits))
        }).collect();
        round_trip(&input);
    }

    #[test]
    fn any_timestamps_and_values_round_trip(pairs in proptest::collection::vec((any::<i64>(), any::<u64>()), 0..60)) {
        let input: Vec<Sample> = pairs.iter().map(|&(t, v)| Sample::new(t, f64::from_bits(v))).collect();
        round_trip(&input);
    }

    #[test]
    fn decoding_random_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        start in any::<i64>(),
        end in any::<i64>(),
    ) {
        let mut out = Vec::new();
        if let Ok(used) = decode_chunk(&bytes, &mut out) {
            prop_assert!(used <= bytes.len());
        }
        check_range(&bytes, i64::MIN, i64::MAX);
        check_range(&bytes, start, end);
    }

    #[test]
    fn range_decoding_is_decoding_then_filtering(
        input in any_chunk(),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), -2i64..=2, -2i64..=2), 1..12),
    ) {
        let mut bytes = Vec::new();
        encode_chunk(&input, &mut bytes);
        let mut ts: Vec<i64> = input.iter().map(|s| s.t).collect();
        ts.sort_unstable();
        for (a, b, da, db) in picks {
            if ts.is_empty() {
                check_range(&bytes, da, db);
            } else {
                check_range(&bytes, a.get(&ts).saturating_add(da), b.get(&ts).saturating_add(db));
            }
        }
    }

    #[test]
    fn decoding_mutated_chunks_never_panics(
        vs in proptest::collection::vec(any_f64(), 1..50),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let input: Vec<Sample> = vs.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 15_000, v)).collect();
        let mut bytes = Vec::new();
        encode_chunk(&input, &mut bytes);
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        let mut out = Vec::new();
        let _ = decode_chunk(&bytes, &mut out);
        for (start, end) in ranges_of(&input) {
            check_range(&bytes, start, end);
        }
    }
}

/// Sample sets that between them take every encoding: varint deltas and deltas of
/// deltas, fixed-width packed values and deltas, every blocked layout, both float-bits
/// forms, exceptions (stale markers among decimals), and unsorted or duplicate timestamps.
fn any_chunk() -> impl Strategy<Value = Vec<Sample>> {
    let anything = proptest::collection::vec((any::<i64>(), any_f64()), 0..60)
        .prop_map(|pairs| pairs.into_iter().map(|(t, v)| Sample::new(t % 1000, v)).collect());
    let decimals = (
        any_timestamps(500),
        -1_000_000_000i64..1_000_000_000,
        proptest::collection::vec((0u32..12, -5000i64..5000), 500),
        -6i32..4,
    )
        .prop_map(|(ts, start, steps, exp)| {
            let mut m = start;
            ts.iter()
                .zip(&steps)
                .map(|(&t, &(kind, step))| {
                    m += match kind {
                        0..=3 => 0,
                        4..=6 => step % 10,
                        _ => step,
                    };
                    let v = if kind == 11 {
                        model::STALE_NAN
                    } else {
                        decimal_to_f64(m, exp)
                    };
                    Sample::new(t, v)
                })
                .collect()
        });
    let layouts = (
        -1_000_000_000_000i64..1_000_000_000_000,
        proptest::collection::vec((0u32..9, 0i64..1_000_000), 1..700),
        prop_oneof![Just(1i64), Just(4096), 1i64..1000],
        -4i32..3,
    )
        .prop_map(|(start, steps, scale, exp)| {
            let mut m = start;
            steps
                .iter()
                .enumerate()
                .map(|(i, &(kind, x))| {
                    m = walk_step(m, kind, x);
                    let v = if kind == 8 && x % 5 == 0 {
                        model::STALE_NAN
                    } else {
                        decimal_to_f64(m * scale, exp)
                    };
                    Sample::new(i as i64 * 15_000, v)
                })
                .collect()
        });
    let durations = (
        proptest::collection::vec(0u64..2_000_000, 1..500),
        1_000_000u64..1_000_000_000,
    )
        .prop_map(|(xs, offset)| {
            xs.iter()
                .enumerate()
                .map(|(i, &x)| Sample::new(i as i64 * 15_000, (offset + x) as f64 / 1e9))
                .collect()
        });
    let float_bits =
        (any::<u64>(), proptest::collection::vec(-100_000i64..100_000, 1..500)).prop_map(|(start, steps)| {
            let mut bits = start;
            steps
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    bits = bits.wrapping_add(d as u64);
                    Sample::new(i as i64 * 15_000, f64::from_bits(bits))
                })
                .collect()
        });
    prop_oneof![anything, decimals, layouts, durations, float_bits]
}

#[test]
fn range_decoding_at_the_ends_of_the_timestamp_range() {
    // Constant intervals whose product with an index overflows although every
    // timestamp fits, and intervals that overflow (not ascending: decoded whole).
    for (t0, delta, n) in [
        (i64::MIN + 5, i64::MAX / 2 + 10, 3),
        (i64::MIN, i64::MAX, 2),
        (i64::MAX - 10, 5, 4),
        (-7, i64::MAX / 3, 4),
    ] {
        let input: Vec<Sample> = (0..n)
            .map(|i| Sample::new(t0.wrapping_add(delta.wrapping_mul(i)), i as f64))
            .collect();
        round_trip(&input);
        let mut bytes = Vec::new();
        encode_chunk(&input, &mut bytes);
        for s in &input {
            check_range(&bytes, s.t, s.t);
            check_range(&bytes, s.t, i64::MAX);
            check_range(&bytes, i64::MIN, s.t);
        }
    }
}

#[test]
fn range_decoding_reads_older_versions() {
    for chunk in [
        "14 03 d0 0f b0 ea 01 fe fa 01 32 32 00",
        "10 05 00 14 14 13 00 02 02 04 06 00 08 01 03 02 00 00 00 00 00 f0 7f",
        "12 02 00 02 3f f0 00 00 00 00 00 00 00",
        "27 05 00 02 00 02 14 05 04 03 84 76 08 00",
    ] {
        let bytes: Vec<u8> = chunk.split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        for start in -1..60_000 {
            check_range(&bytes, start, start + 15_000);
        }
    }
}

#[test]
fn packs_noisy_durations_as_values() {
    // Nanosecond-quantized durations: random within a range, no trend.
    let mut x: u64 = 12345;
    let input: Vec<Sample> = (0..480)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let ns = 1_000_000 + (x >> 33) % 2_000_000;
            Sample::new(i * 15_000, ns as f64 / 1e9)
        })
        .collect();
    let bytes = round_trip(&input);
    assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::DecimalPacked as u8);
    // 21 bits per value.
    assert!(bytes.len() < 480 * 21 / 8 + 32, "{}", bytes.len());
}

#[test]
fn rarely_changing_gauges_read_in_part() {
    // A gauge that moves every ten samples or so: blocked deltas in sparse groups with
    // few items, which a range read sums or steps over without reading them one by one.
    let mut x = 9;
    let mut v = 1_000_000i64;
    for scale in [1, 4096] {
        let input: Vec<Sample> = (0..480)
            .map(|i| {
                if lcg(&mut x).is_multiple_of(10) {
                    v += (lcg(&mut x) % 2001) as i64 - 1000;
                }
                Sample::new(i * 15_000, (v * scale) as f64)
            })
            .collect();
        let bytes = round_trip(&input);
        assert_eq!(bytes[0] & VALUE_ENCODING_MASK, ValueEncoding::DecimalPacked as u8);
        for start in (0..480).step_by(7) {
            check_range(&bytes, start * 15_000, i64::MAX);
            check_range(&bytes, 0, start * 15_000);
        }
    }
}

/// One step of a mantissa walk for the blocked-layout tests: runs of
/// unchanged values (kinds 0-2), small and large moves, rate changes, and
/// jumps to an arbitrary value (resets).
fn walk_step(m: i64, kind: u32, x: i64) -> i64 {
    match kind {
        0..=2 => m,
        3 => m + x % 7,
        4 => m - x % 300,
        5 => m + x,
        6 => m + x * 1000,
        _ => x,
    }
}
