//! Serde types of request/response bodies, shared by the client and the
//! emulator (and nothing else is shared between them).
//!
//! Conventions: every optional field is `Option` and skipped when `None`
//! (SDKs never send `null`); int64 ids are `i64` and also accepted as strings
//! on read (never via f64); unknown enum values are kept as strings.

pub mod apps;
pub mod auth;
pub mod database;
pub mod jobs;
pub mod scim;
pub mod workspace;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The canonical error body (reference §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error_code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Value>,
}

/// Deserialize an int64 sent either as a JSON integer or as a numeric string.
pub mod lenient_i64 {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct I64Visitor;

    impl Visitor<'_> for I64Visitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an int64 as a number or a numeric string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} does not fit in int64")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            // Accept only floats that are exact integers in the safe range.
            if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("{v} is not an int64")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not an int64")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(I64Visitor)
    }

    /// For `Option<i64>` fields (with `#[serde(default)]`).
    pub mod option {
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(deserialize_with = "super::deserialize")] i64);
            Option::<Wrap>::deserialize(d).map(|o| o.map(|w| w.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Id {
        #[serde(deserialize_with = "lenient_i64::deserialize")]
        id: i64,
        #[serde(default, deserialize_with = "lenient_i64::option::deserialize")]
        other: Option<i64>,
    }

    #[test]
    fn lenient_i64_accepts_numbers_and_strings_exactly() {
        let max = serde_json::from_str::<Id>(r#"{"id": 9223372036854775807}"#).unwrap();
        assert_eq!(max.id, i64::MAX);
        assert_eq!(max.other, None);
        let s =
            serde_json::from_str::<Id>(r#"{"id": "9223372036854775806", "other": "5"}"#).unwrap();
        assert_eq!(s.id, i64::MAX - 1);
        assert_eq!(s.other, Some(5));
        assert!(serde_json::from_str::<Id>(r#"{"id": "abc"}"#).is_err());
        assert!(serde_json::from_str::<Id>(r#"{"id": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Id>(r#"{"id": 18446744073709551615}"#).is_err());
    }
}
