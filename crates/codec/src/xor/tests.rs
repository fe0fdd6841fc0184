use super::*;
use proptest::prelude::*;

fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut enc = XorEncoder::new();
    for &(t, v) in samples {
        enc.append(t, v);
    }
    enc
}

fn decode(chunk: &[u8]) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    decode_xor(chunk, &mut out).unwrap();
    out.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn encoder_is_compact() {
    assert!(
        std::mem::size_of::<XorEncoder>() <= 48,
        "{}",
        std::mem::size_of::<XorEncoder>()
    );
}

#[test]
fn empty_chunk_is_two_zero_bytes() {
    let enc = XorEncoder::new();
    assert_eq!(enc.bytes(), [0, 0]);
    assert_eq!(enc.last(), None);
    assert_eq!(enc.first_t(), None);
    assert!(decode(enc.bytes()).is_empty());
}

#[test]
fn exact_bytes_three_samples() {
    // Worked by hand from the format:
    //   00 03                   sample count
    //   d0 0f                   varint(1000) = zigzag 2000
    //   3f f0 00 00 00 00 00 00 1.0
    //   e8 07                   uvarint delta 1000
    //   then bits: 0 (value unchanged) | 0 (dod 0) | 1 1 00001 001011 11111111111
    //   (2.0 ^ 1.0 = 0x7ff0.., 1 leading zero, 11 meaningful bits) = 30 97 ff c0
    let enc = encode(&[(1000, 1.0), (2000, 1.0), (3000, 2.0)]);
    assert_eq!(
        hex(enc.bytes()),
        "00 03 d0 0f 3f f0 00 00 00 00 00 00 e8 07 30 97 ff c0"
    );
    assert_eq!(enc.first_t(), Some(1000));
    assert_eq!(enc.last(), Some((3000, 2.0)));
}

#[test]
fn exact_bytes_dod_buckets_and_window_reuse() {
    // t: 0, 10, 30 (dod +10), 40 (dod -10); values 1.0, 2.0, 4.0, 4.0
    //   00 04 | 00 (varint 0) | 3f f0 00.. (1.0)
    //   0a (delta 10) | 1 1 00001 001011 11111111111   (2.0^1.0: lead 1, 11 bits)
    //   10 00000000001010  dod +10
    //   1 0 + 11 bits in window: 4.0^2.0 = 0x0010.. → bits 00000000001
    //   10 11111111110110  dod -10 (14-bit two's complement)
    //   0                  value unchanged
    let enc = encode(&[(0, 1.0), (10, 2.0), (30, 4.0), (40, 4.0)]);
    let bits = "110000100101111111111111\
                1000000000001010\
                1000000000001\
                1011111111110110\
                0";
    let mut expected = vec![0x00, 0x04, 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x0a];
    let padded = format!("{bits:0<width$}", width = bits.len().div_ceil(8) * 8);
    for byte in padded.as_bytes().chunks(8) {
        expected.push(u8::from_str_radix(std::str::from_utf8(byte).unwrap(), 2).unwrap());
    }
    assert_eq!(hex(enc.bytes()), hex(&expected));
}

#[test]
fn bucket_edges_round_trip() {
    let mut samples = vec![(0i64, 0.0f64), (1000, 0.0)];
    let mut t = 1000i64;
    let mut delta = 1000i64;
    for dod in [
        8192,
        -8191,
        8193,
        -8192,
        65536,
        -65535,
        65537,
        524288,
        -524287,
        524289,
        -524288,
        i64::MAX / 4,
    ] {
        delta = delta.wrapping_add(dod);
        t = t.wrapping_add(delta);
        samples.push((t, 0.0));
    }
    let enc = encode(&samples);
    let got = decode(enc.bytes());
    assert_eq!(got, samples.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>());
}

#[test]
fn resume_continues_the_same_stream() {
    let samples: Vec<(i64, f64)> = (0..50).map(|i| (i * 15_000 + (i % 3), (i * i) as f64 / 7.0)).collect();
    for split in [0, 1, 2, 3, 10, 49, 50] {
        let enc = encode(&samples[..split]);
        let mut resumed = XorEncoder::resume(enc.bytes()).unwrap();
        assert_eq!(resumed.bytes(), enc.bytes());
        for &(t, v) in &samples[split..] {
            resumed.append(t, v);
        }
        assert_eq!(resumed.bytes(), encode(&samples).bytes(), "split {split}");
    }
}

#[test]
fn shrink_to_fit_keeps_the_chunk() {
    let mut enc = encode(&[(1, 1.5), (2, 2.5), (3, 3.5)]);
    let before = enc.bytes().to_vec();
    enc.shrink_to_fit();
    assert_eq!(enc.bytes(), before);
    assert_eq!(enc.heap_bytes(), before.len());
    enc.append(4, 4.5);
    assert_eq!(decode(enc.bytes()).len(), 4);
}

#[test]
fn truncated_chunk_is_an_error() {
    let enc = encode(&[(1, 1.5), (2, 2.5), (3, 3.5)]);
    let bytes = enc.bytes();
    for cut in 0..bytes.len() {
        let mut out = Vec::new();
        assert!(decode_xor(&bytes[..cut], &mut out).is_err(), "cut {cut}");
        assert!(XorEncoder::resume(&bytes[..cut]).is_err());
    }
}

pub(crate) fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(model::STALE_NAN),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::MIN_POSITIVE / 3.0),
        (-1_000_000i64..1_000_000).prop_map(|m| m as f64 / 100.0),
        (0u64..1 << 40).prop_map(|m| m as f64),
    ]
}

pub(crate) fn any_timestamps(max: usize) -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i64>(),
        proptest::collection::vec(
            prop_oneof![1i64..100, Just(15_000), 14_990i64..15_010, 1i64..i64::MAX / 64],
            0..max,
        ),
    )
        .prop_map(|(start, deltas)| {
            let mut t = start / 2;
            let mut out = vec![t];
            for d in deltas {
                match t.checked_add(d) {
                    Some(next) => t = next,
                    None => break,
                }
                out.push(t);
            }
            out
        })
}

proptest! {
    #[test]
    fn round_trip_bit_exact(ts in any_timestamps(300), vs in proptest::collection::vec(any_f64(), 300)) {
        let samples: Vec<(i64, f64)> = ts.iter().zip(&vs).map(|(&t, &v)| (t, v)).collect();
        let enc = encode(&samples);
        prop_assert_eq!(usize::from(enc.num_samples()), samples.len());
        let got = decode(enc.bytes());
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        prop_assert_eq!(got, want);
        if let Some(&(t, v)) = samples.last() {
            prop_assert_eq!(enc.last().map(|(t, v)| (t, v.to_bits())), Some((t, v.to_bits())));
            prop_assert_eq!(enc.first_t(), Some(samples[0].0));
        }
    }

    #[test]
    fn unordered_timestamps_round_trip(ts in proptest::collection::vec(any::<i64>(), 0..50)) {
        let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
        let got = decode(encode(&samples).bytes());
        prop_assert_eq!(got, samples.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>());
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        let _ = decode_xor(&bytes, &mut out);
        if let Ok(mut enc) = XorEncoder::resume(&bytes) {
            if enc.num_samples() < u16::MAX {
                enc.append(i64::MAX, 1.0);
                let mut again = Vec::new();
                decode_xor(enc.bytes(), &mut again).unwrap();
            }
        }
    }

    #[test]
    fn decode_appends_after_prefix(vs in proptest::collection::vec(any_f64(), 1..20)) {
        let samples: Vec<(i64, f64)> = vs.iter().enumerate().map(|(i, &v)| (i as i64, v)).collect();
        let enc = encode(&samples);
        let mut out = vec![Sample::new(-1, 42.0)];
        decode_xor(enc.bytes(), &mut out).unwrap();
        prop_assert!(out[0].bit_eq(&Sample::new(-1, 42.0)));
        prop_assert_eq!(out.len(), samples.len() + 1);
    }
}
