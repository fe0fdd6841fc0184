//! Feeds arbitrary bytes to the XOR chunk decoder and to `XorEncoder::resume`: they
//! must return errors, never panic; a resumed chunk must still decode after an append.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = codec::decode_xor(data, &mut out);
    if let Ok(mut enc) = codec::XorEncoder::resume(data) {
        if enc.num_samples() < u16::MAX {
            enc.append(i64::MAX, f64::NAN);
            let mut again = Vec::new();
            codec::decode_xor(enc.bytes(), &mut again).expect("resumed chunk decodes");
        }
    }
});
