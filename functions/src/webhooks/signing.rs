//! How a receiver knows a call is codebox's, for it, and fresh. Each user has a key of
//! their own — HMAC-SHA256 of their id under the deployment's `WEBHOOK_SECRET`, shown to
//! them alone by `GET /webhook/key` and stored nowhere — so no user can sign a call
//! another user's receiver would take (with one key for all, every user who checks a
//! signature holds the key that forges everyone's). A call carries the time it was signed
//! at, and the signature covers it with the body: a receiver that refuses calls older than
//! a few minutes cannot be fed an old call again.

use codebox_core::domain::UserId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header of codebox's signature: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
/// under the receiving user's key.
pub const SIGNATURE: &str = "x-codebox-signature";
/// The header with the time the call was signed at, in seconds since the epoch.
pub const TIMESTAMP: &str = "x-codebox-timestamp";

/// The key `user`'s webhook calls are signed with, in hex (what the user is shown and
/// checks with, as bytes of that text).
pub fn user_key(secret: &[u8], user: UserId) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"codebox webhook key v1 ");
    mac.update(user.to_string().as_bytes());
    Some(hex(&mac.finalize().into_bytes()))
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under key>`: what a receiver computes
/// to check a call, `timestamp` being the `X-Codebox-Timestamp` header's text.
pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("sha256={}", hex(&mac.finalize().into_bytes())))
}

/// The headers signing `body` for `user`'s receiver at `at` (seconds since the epoch).
pub fn headers(
    secret: &[u8],
    user: UserId,
    at: i64,
    body: &[u8],
) -> Option<[(&'static str, String); 2]> {
    let key = user_key(secret, user)?;
    let timestamp = at.to_string();
    let signed = signature(key.as_bytes(), &timestamp, body)?;
    Some([(TIMESTAMP, timestamp), (SIGNATURE, signed)])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_a_key_of_their_own() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let secret = b"0123456789abcdef0123456789abcdef";
        let key_a = user_key(secret, a).expect("a key");
        assert_eq!(key_a.len(), 64);
        assert_eq!(
            user_key(secret, a),
            Some(key_a.clone()),
            "the same every time"
        );
        assert_ne!(user_key(secret, b), Some(key_a.clone()));
        assert_ne!(
            user_key(b"another deployment's secret, long", a),
            Some(key_a)
        );
    }

    #[test]
    fn the_signature_covers_the_time_and_the_body() {
        let user = uuid::Uuid::new_v4();
        let secret = b"0123456789abcdef0123456789abcdef";
        let [(t, at), (s, signed)] = headers(secret, user, 1_700_000_000, b"{}").expect("signed");
        assert_eq!((t, s), (TIMESTAMP, SIGNATURE));
        assert_eq!(at, "1700000000");
        let key = user_key(secret, user).expect("a key");
        assert_eq!(signature(key.as_bytes(), &at, b"{}"), Some(signed.clone()));
        assert_ne!(
            signature(key.as_bytes(), "1700000001", b"{}"),
            Some(signed.clone())
        );
        assert_ne!(signature(key.as_bytes(), &at, b"{ }"), Some(signed));
    }
}
