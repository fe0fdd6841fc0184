//! Feeds arbitrary bytes to the decimal chunk decoder (must not panic), and checks that
//! whatever it decodes re-encodes and decodes back bit-exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut samples = Vec::new();
    if let Ok(used) = codec::decode_chunk(data, &mut samples) {
        assert!(used <= data.len());
        let mut bytes = Vec::new();
        codec::encode_chunk(&samples, &mut bytes);
        let mut again = Vec::new();
        codec::decode_chunk(&bytes, &mut again).expect("own chunk decodes");
        assert!(again.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)) && again.len() == samples.len());
    }
    let _ = codec::decompress_frame(data, 1 << 20);
});
