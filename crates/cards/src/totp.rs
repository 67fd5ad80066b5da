//! The rotating QR token: a time-based code in 30-second steps, like TOTP (RFC 6238) but
//! with HMAC-SHA-256 and a longer code, because the till sees it as a bearer credential.

use hmac::{Hmac, Mac};
use sha2_010::Sha256;

pub const STEP_S: i64 = 30;

/// The step a Unix time falls in.
pub fn step_at(unix_s: i64) -> i64 {
    unix_s.div_euclid(STEP_S)
}

/// The code for one step: 16 lowercase base-32 characters (80 bits) of
/// HMAC-SHA-256(secret, step as 8 big-endian bytes).
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let out = mac.finalize().into_bytes();
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits: u128 = 0;
    for b in &out[..10] {
        bits = (bits << 8) | *b as u128;
    }
    (0..16).rev().map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect()
}

/// Which step, among the current one and one either side, `candidate` is the code of.
/// Compared in constant time.
pub fn verify(secret: &[u8], candidate: &str, now_s: i64) -> Option<i64> {
    let now = step_at(now_s);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let c = code(secret, step);
        if bool::from(subtle::ConstantTimeEq::ct_eq(c.as_bytes(), candidate.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_step_either_side_and_no_more() {
        let s = b"secret-of-one-member";
        let t = 1_800_000_000;
        let c = code(s, step_at(t));
        assert_eq!(c.len(), 16);
        assert_eq!(verify(s, &c, t), Some(step_at(t)));
        assert_eq!(verify(s, &c, t + 30), Some(step_at(t)));
        assert_eq!(verify(s, &c, t - 30), Some(step_at(t)));
        assert_eq!(verify(s, &c, t + 61), None);
        assert_eq!(verify(b"another", &c, t), None);
        assert_ne!(code(s, 1), code(s, 2));
    }
}
