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

    /// Every claim, for the authorization rules.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.claims
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unique(text: &str) -> Result<UniqueObject, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn verified(claims: Value) -> VerifiedClaims {
        let Value::Object(map) = claims else {
            panic!("claims must be an object")
        };
        VerifiedClaims::new(UniqueObject(map))
    }

    #[test]
    fn unique_object_refuses_duplicate_member_names() {
        for text in [
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"iss":"a","iss":"a"}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            // Escapes decode to the same name.
            r#"{"iss":"a","\u0069ss":"b"}"#,
        ] {
            let err = unique(text).expect_err(text);
            assert!(err.to_string().contains("duplicate claim"), "{err}");
        }
    }

    #[test]
    fn unique_object_accepts_objects_only() {
        let parsed = unique(r#"{"iss":"a","sub":"b","nested":{"x":1}}"#).unwrap();
        assert_eq!(parsed.0.len(), 3);
        assert_eq!(parsed.0["nested"], json!({"x": 1}));
        assert!(unique("{}").unwrap().0.is_empty());
        for text in [
            "[]",
            "null",
            "\"iss\"",
            "1",
            "",
            "{\"iss\":}",
            "{\"a\":1} x",
        ] {
            assert!(unique(text).is_err(), "{text}");
        }
        // Names are case-sensitive: these are two different members.
        assert_eq!(unique(r#"{"iss":"a","ISS":"b"}"#).unwrap().0.len(), 2);
    }

    #[test]
    fn subject_is_the_string_sub_only() {
        assert_eq!(verified(json!({"sub": "alice"})).subject(), Some("alice"));
        assert_eq!(verified(json!({"sub": 42})).subject(), None);
        assert_eq!(verified(json!({})).subject(), None);
    }

    #[test]
    fn header_values_render_claims_safely() {
        let claims = verified(json!({
            "sub": "alice",
            "n": 42,
            "admin": true,
            "roles": ["a", "b"],
            "obj": {"k": "v"},
            "null": null,
            "tab": "a\tb",
            "newline": "a\r\nx-injected: 1",
            "nul": "a\u{0}b",
            "del": "a\u{7f}",
            "unicode": "José",
            "empty": "",
        }));
        let cases = [
            ("sub", Some("alice")),
            ("n", Some("42")),
            ("admin", Some("true")),
            ("roles", Some(r#"["a","b"]"#)),
            ("obj", Some(r#"{"k":"v"}"#)),
            ("null", None),
            ("absent", None),
            ("tab", Some("a\tb")),
            ("newline", None),
            ("nul", None),
            ("del", None),
            ("unicode", None),
            ("empty", Some("")),
        ];
        for (name, expected) in cases {
            assert_eq!(claims.header_value(name).as_deref(), expected, "{name}");
        }
    }
}
