//! Test helpers (cargo feature `testing`, off by default; not part of the library's API): a
//! verifiable byte pattern, different at every offset and for every seed, so that a reader can
//! tell a correct hand-off from stale, shifted or foreign bytes.

/// The pattern's byte at `index` for `seed`.
pub fn byte(index: usize, seed: u64) -> u8 {
    let x = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (x >> 29) as u8 ^ (x >> 13) as u8
}

/// `len` bytes of the pattern for `seed`.
pub fn fill(len: usize, seed: u64) -> Vec<u8> {
    (0..len).map(|i| byte(i, seed)).collect()
}

/// The seed of the pattern a consumer writes back for `frame` in the demo's round trip.
pub fn writeback_seed(frame: u64) -> u64 {
    frame ^ 0x5eed_0000_0000
}

/// The first byte of `data` that differs from the pattern: (offset, seen, expected).
pub fn first_mismatch(data: &[u8], seed: u64) -> Option<(usize, u8, u8)> {
    data.iter().enumerate().find(|&(i, &b)| b != byte(i, seed)).map(|(i, &b)| (i, b, byte(i, seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_and_mismatch_is_found() {
        let a = fill(4096, 1);
        assert_ne!(a, fill(4096, 2));
        assert_eq!(first_mismatch(&a, 1), None);
        let mut b = a.clone();
        b[1000] ^= 1;
        assert_eq!(first_mismatch(&b, 1), Some((1000, a[1000] ^ 1, a[1000])));
        // Not constant within a frame, so a shifted copy is caught too.
        assert_ne!(first_mismatch(&a[1..], 1), None);
    }
}
