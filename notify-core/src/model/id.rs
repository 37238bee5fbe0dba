//! Stable notification ids, derived from the event id and the audience.

use sha2::{Digest, Sha256};

use super::Audience;

/// The stable notification id for an (event id, audience) pair: `n_` + 26 base32 characters.
pub fn notification_id(event_id: &str, audience: &Audience) -> String {
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update([0]);
    h.update(audience.kind().as_bytes());
    h.update([0]);
    h.update(audience.id().unwrap_or("").as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(28);
    out.push_str("n_");
    base32_crockford(&digest[..16], &mut out);
    out
}

fn base32_crockford(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = notification_id("evt-1", &Audience::User("alice".into()));
        assert_eq!(a, notification_id("evt-1", &Audience::User("alice".into())));
        assert_ne!(
            a,
            notification_id("evt-1", &Audience::Group("alice".into()))
        );
        assert_ne!(a, notification_id("evt-2", &Audience::User("alice".into())));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("n_"));
    }
}
