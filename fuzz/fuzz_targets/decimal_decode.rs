//! Feeds arbitrary bytes to the decimal chunk decoder (must not panic), and checks that
//! whatever it decodes re-encodes and decodes back bit-exactly, and that the range
//! decoder gives what decoding and filtering give, for ranges taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::Sample;

fuzz_target!(|data: &[u8]| {
    let mut samples = Vec::new();
    let full = codec::decode_chunk(data, &mut samples);
    if let Ok(used) = full {
        assert!(used <= data.len());
        let mut bytes = Vec::new();
        codec::encode_chunk(&samples, &mut bytes);
        let mut again = Vec::new();
        codec::decode_chunk(&bytes, &mut again).expect("own chunk decodes");
        assert!(again.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)) && again.len() == samples.len());
    }
    // Ranges: from the input's last 16 bytes, and around decoded timestamps.
    let mut ranges = vec![(i64::MIN, i64::MAX)];
    if let Some(tail) = data.len().checked_sub(16).and_then(|at| data.get(at..)) {
        let word = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        ranges.push((word(&tail[..8]), word(&tail[8..])));
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        ranges.push((last.t, i64::MAX));
        ranges.push((first.t.min(last.t), first.t.max(last.t)));
        ranges.push((samples[samples.len() / 2].t, samples[samples.len() / 2].t));
    }
    for (start, end) in ranges {
        let mut got = Vec::new();
        match (codec::decode_chunk_range(data, start, end, &mut got), &full) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, *b);
                let want: Vec<&Sample> = samples.iter().filter(|s| (start..=end).contains(&s.t)).collect();
                assert!(got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.bit_eq(b)));
            }
            (Err(_), Err(_)) => assert!(got.is_empty()),
            _ => panic!("decode_chunk and decode_chunk_range disagree on success"),
        }
    }
    let _ = codec::decompress_frame(data, 1 << 20);
});
