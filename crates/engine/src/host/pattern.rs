//! The deterministic byte pattern apps send (`byte i = i % 251`), so that a
//! corrupted, duplicated or misordered byte shows at the receiving app.
//!
//! 251 is prime and not a power of two, so a shifted stream never lines up
//! with the original by accident. Filling and checking copy and compare whole
//! slices of a precomputed table (memcpy/memcmp) instead of going byte by byte.

use std::sync::OnceLock;

const PERIOD: u64 = 251;
/// Enough periods that any chunk up to `MAX_CHUNK` bytes starts at any phase.
const TABLE_LEN: usize = 251 * 262;
const MAX_CHUNK: usize = TABLE_LEN - PERIOD as usize;

fn table() -> &'static [u8] {
    static TABLE: OnceLock<Box<[u8]>> = OnceLock::new();
    TABLE.get_or_init(|| (0..TABLE_LEN).map(|i| (i as u64 % PERIOD) as u8).collect())
}

/// The pattern's byte at stream offset `i`.
pub(crate) fn byte_at(i: u64) -> u8 {
    (i % PERIOD) as u8
}

/// Writes the pattern bytes `offset..offset + out.len()` into `out`.
pub(crate) fn fill(mut offset: u64, out: &mut [u8]) {
    let t = table();
    for chunk in out.chunks_mut(MAX_CHUNK) {
        let phase = (offset % PERIOD) as usize;
        chunk.copy_from_slice(&t[phase..phase + chunk.len()]);
        offset += chunk.len() as u64;
    }
}

/// The first byte that differs from the pattern: (stream offset, expected, got).
pub(crate) type Mismatch = (u64, u8, u8);

/// Compares `data` with the pattern from stream offset `offset`; returns how
/// many bytes matched and the first one that did not.
pub(crate) fn check(mut offset: u64, data: &[u8]) -> (u64, Option<Mismatch>) {
    let t = table();
    let mut matched = 0u64;
    let mut first = None;
    for chunk in data.chunks(MAX_CHUNK) {
        let phase = (offset % PERIOD) as usize;
        if chunk == &t[phase..phase + chunk.len()] {
            matched += chunk.len() as u64;
        } else {
            for (k, &got) in chunk.iter().enumerate() {
                let at = offset + k as u64;
                let want = byte_at(at);
                if got == want {
                    matched += 1;
                } else if first.is_none() {
                    first = Some((at, want, got));
                }
            }
        }
        offset += chunk.len() as u64;
    }
    (matched, first)
}

/// The sentence an app reports for the first differing byte.
pub(crate) fn describe((at, want, got): Mismatch) -> String {
    format!("byte {at} differs: expected {want:#04x}, got {got:#04x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_check_round_trips_across_chunks() {
        let mut buf = vec![0u8; 200_000];
        fill(1234, &mut buf);
        assert_eq!(buf[0], byte_at(1234));
        assert_eq!(check(1234, &buf), (200_000, None));
        buf[70_000] ^= 0xff;
        let (matched, bad) = check(1234, &buf);
        assert_eq!(matched, 199_999);
        let (at, want, got) = bad.unwrap();
        assert_eq!(
            (at, want, got),
            (71_234, byte_at(71_234), byte_at(71_234) ^ 0xff)
        );
        assert!(describe(bad.unwrap()).starts_with("byte 71234 differs"));
    }
}
