//! One float sample and Prometheus' staleness marker.

/// The bit pattern Prometheus writes as a staleness marker: a NaN that no
/// arithmetic produces, so it can be told apart from a "real" NaN value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64`. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Tells whether `v` is the staleness marker (bit-exact comparison).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float sample: a millisecond timestamp and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; may be NaN, ±Inf or [`STALE_NAN`].
    pub v: f64,
}

impl Sample {
    /// Creates a sample.
    pub const fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Compares two samples bit-exactly, so that NaN equals the same NaN.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_a_nan_but_not_every_nan() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
    }
}
