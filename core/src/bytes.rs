//! [`Bytes`]: a program's stdin, stdout, stderr or compiler output, byte for byte.
//!
//! A program may write any byte. Held as `String`, bytes that are not UTF-8 would be
//! lost, and some that are would break a backend: PostgreSQL's `jsonb` refuses `\u0000`,
//! SQS refuses most control characters, and JSON escapes each control byte as six. So
//! stored and transported values use a compact form that every backend takes: a plain
//! JSON string when the bytes are UTF-8 text without control characters (other than tab,
//! line feed and carriage return), and `{"base64": "…"}` otherwise (×4/3 at worst).

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(Vec<u8>);

impl Bytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As text: invalid UTF-8 sequences become U+FFFD.
    pub fn to_text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// The text, when the bytes are text every backend stores as a string.
    fn as_plain_text(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.0).ok()?;
        text.chars().all(is_plain).then_some(text)
    }
}

/// Characters kept as they are in the string form: the set SQS accepts in a message body
/// (which also excludes NUL, the one `jsonb` refuses), less the other C0 controls and DEL.
fn is_plain(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_text_lossy())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl PartialEq<str> for Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_plain_text() {
            Some(text) => serializer.serialize_str(text),
            None => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("base64", &self.to_base64())?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a string or {"base64": "…"}"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bytes, A::Error> {
                let mut bytes = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key != "base64" || bytes.is_some() {
                        return Err(de::Error::custom(format!(
                            "unexpected field `{key}`; expected one `base64`"
                        )));
                    }
                    let encoded: Cow<'de, str> = map.next_value()?;
                    bytes = Some(STANDARD.decode(encoded.as_bytes()).map_err(|e| {
                        de::Error::custom(format!("`base64` is not valid base64: {e}"))
                    })?);
                }
                bytes
                    .map(Bytes)
                    .ok_or_else(|| de::Error::missing_field("base64"))
            }
        }

        deserializer.deserialize_any(BytesVisitor)
    }
}

/// The schema of [`Bytes`] in the OpenAPI document (for `utoipa`'s `value_type`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Bytes)]
pub enum BytesSchema {
    /// UTF-8 text without control characters other than tab, line feed and carriage return.
    Text(String),
    /// Anything else: the bytes, base64-encoded.
    Base64 {
        #[schema(format = Byte)]
        base64: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(b: &Bytes) -> String {
        let json = serde_json::to_string(b).unwrap();
        assert_eq!(&serde_json::from_str::<Bytes>(&json).unwrap(), b, "{json}");
        json
    }

    #[test]
    fn text_stays_a_string() {
        assert_eq!(
            round_trip(&"héllo\tworld\r\n✓".into()),
            r#""héllo\tworld\r\n✓""#
        );
        assert_eq!(round_trip(&"".into()), r#""""#);
    }

    #[test]
    fn every_byte_survives_and_no_control_character_is_left_in_the_json() {
        let all: Bytes = (0..=255u8).collect::<Vec<_>>().into();
        let json = round_trip(&all);
        assert!(json.starts_with(r#"{"base64":""#), "{json}");
        for nasty in [
            &b"a\x00b"[..],
            b"\x01",
            b"\x7f",
            b"\xff\xfe",
            "\u{fffe}".as_bytes(),
        ] {
            let json = round_trip(&nasty.into());
            assert!(json.starts_with(r#"{"base64":"#), "{json}");
            assert!(!json.contains('\\'), "no escape in {json}");
        }
    }

    #[test]
    fn control_bytes_cost_at_most_four_thirds() {
        let ones: Bytes = vec![1u8; 3 * 1024].into();
        assert!(serde_json::to_string(&ones).unwrap().len() <= 4 * 1024 + 16);
    }

    /// The largest outcome a worker commits — 1 MiB per stream of the costliest bytes and
    /// the compiler's 64 KiB — fits one Lambda invocation (6 MB) with room to spare, so the
    /// commit path needs no blob spill today. Results that grow (one per test case) must
    /// revisit this.
    #[test]
    fn the_largest_commit_fits_a_lambda_payload() {
        use crate::domain::{CodeResult, Commit, TaskResult, TaskStatus, Verdict};
        let worst = |len: usize| -> Bytes { vec![1u8; len].into() };
        let commit = Commit {
            task_id: uuid::Uuid::new_v4(),
            status: TaskStatus::Completed,
            result: TaskResult::Code(CodeResult {
                stdout: worst(1024 * 1024),
                stderr: worst(1024 * 1024),
                compile_output: Some(worst(64 * 1024)),
                ..CodeResult::empty(Verdict::Ok)
            }),
            notify: false,
        };
        let body = serde_json::to_vec(&commit).unwrap();
        assert!(body.len() < 3 * 1024 * 1024, "{} bytes", body.len());
        let escaped = serde_json::to_vec(&String::from_utf8(vec![1u8; 1024 * 1024]).unwrap());
        assert!(
            escaped.unwrap().len() > 6 * 1024 * 1024,
            "what JSON strings would cost"
        );
    }

    #[test]
    fn malformed_forms_are_refused() {
        for bad in [
            r#"{"base64": "!!"}"#,
            r#"{"hex": "00"}"#,
            r#"{}"#,
            "12",
            "null",
        ] {
            assert!(serde_json::from_str::<Bytes>(bad).is_err(), "{bad}");
        }
    }
}
