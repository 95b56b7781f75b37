//! The JWT claims set. Parsing refuses duplicate member names (which JSON parsers resolve
//! differently, the classic confused-deputy trick); [`VerifiedClaims`] can only be built by
//! the verifier, so holding one means the signature and claim checks passed.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON object whose member names are unique (JOSE headers and JWT claims).
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueObject(pub Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueKeys;
        impl<'de> Visitor<'de> for UniqueKeys {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with unique member names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("duplicate claim {key:?}")));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueObject(map))
            }
        }
        deserializer.deserialize_map(UniqueKeys)
    }
}

/// Claims of a token whose signature, issuer, audience and lifetime were all checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    claims: Map<String, Value>,
}

impl VerifiedClaims {
    /// Only the verifier calls this, after every check has passed.
    pub(super) fn new(claims: UniqueObject) -> Self {
        Self { claims: claims.0 }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    pub fn subject(&self) -> Option<&str> {
        self.get("sub").and_then(Value::as_str)
    }

    /// A claim rendered as a header value: strings verbatim, other JSON compactly.
    /// `None` when absent or when the result is not a safe header value.
    pub fn header_value(&self, name: &str) -> Option<String> {
        let rendered = match self.get(name)? {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let safe = rendered
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        safe.then_some(rendered)
    }
}
