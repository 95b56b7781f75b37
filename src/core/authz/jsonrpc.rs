//! The JSON-RPC body of an MCP POST, read strictly: one message or a batch, duplicate member
//! names refused (`id`, `method`, `params.name`, `params.uri`, `params._meta`'s version), so the filter and the server
//! can never read different targets from the same bytes.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

/// One message of the body, reduced to what authorization reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `None` for a notification (no `id` member); `Some(Value::Null)` for `"id": null`.
    pub id: Option<Value>,
    /// `None` for a response (a client answering a server request).
    pub method: Option<String>,
    /// `params.name` when it is a string.
    pub name: Option<String>,
    /// `params.uri` when it is a string.
    pub uri: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` when it is a string.
    pub version: Option<String>,
}

/// The body: a single message or a batch (JSON-RPC arrays, MCP 2025-03-26).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Single(Message),
    Batch(Vec<Message>),
}

impl Body {
    pub fn messages(&self) -> &[Message] {
        match self {
            Self::Single(message) => std::slice::from_ref(message),
            Self::Batch(messages) => messages,
        }
    }
}

/// Why a body was refused (answered 400 with a JSON-RPC error and `id: null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (-32700).
    Parse,
    /// JSON, but not a JSON-RPC message or batch of them (-32600).
    Invalid,
}

impl BodyError {
    pub fn code(self) -> i64 {
        match self {
            Self::Parse => -32700,
            Self::Invalid => -32600,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Parse => "Parse error",
            Self::Invalid => "Invalid Request",
        }
    }
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Params>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `params`, an object (or null); only `name`, `uri` and the `_meta` version are kept.
#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
    version: Option<String>,
}

/// The `_meta` key that carries a 2026-07-28 request's protocol version.
const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// `params._meta`, an object (or null); only the protocol version is kept.
#[derive(Default)]
struct Meta {
    version: Option<String>,
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = Meta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a _meta object")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Meta, E> {
                Ok(Meta::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Meta, A::Error> {
                let mut meta = Meta::default();
                let mut seen = false;
                while let Some(key) = access.next_key::<String>()? {
                    if key != VERSION_KEY {
                        access.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    if seen {
                        return Err(serde::de::Error::custom(format!("duplicate field {key}")));
                    }
                    seen = true;
                    meta.version = match access.next_value::<Value>()? {
                        Value::String(s) => Some(s),
                        _ => None,
                    };
                }
                Ok(meta)
            }
        }
        deserializer.deserialize_map(MetaVisitor)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a params object")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Params, E> {
                Ok(Params::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Params, A::Error> {
                let mut params = Params::default();
                let (mut seen_name, mut seen_uri, mut seen_meta) = (false, false, false);
                while let Some(key) = access.next_key::<String>()? {
                    if key == "_meta" {
                        if seen_meta {
                            return Err(serde::de::Error::custom("duplicate field _meta"));
                        }
                        seen_meta = true;
                        params.version = access.next_value::<Meta>()?.version;
                        continue;
                    }
                    let (slot, seen) = match key.as_str() {
                        "name" => (&mut params.name, &mut seen_name),
                        "uri" => (&mut params.uri, &mut seen_uri),
                        _ => {
                            access.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if *seen {
                        return Err(serde::de::Error::custom(format!("duplicate field {key}")));
                    }
                    *seen = true;
                    *slot = match access.next_value::<Value>()? {
                        Value::String(s) => Some(s),
                        _ => None,
                    };
                }
                Ok(params)
            }
        }
        // Arrays (positional params) are refused: no MCP method takes them.
        deserializer.deserialize_map(ParamsVisitor)
    }
}

/// A message that must be a JSON object: derived structs also accept arrays (fields by
/// position), which no JSON-RPC peer sends (the `jsonrpc` fuzz target forwarded `[[]]`).
struct ObjectMessage(RawMessage);

impl<'de> Deserialize<'de> for ObjectMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = ObjectMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectMessage, A::Error> {
                RawMessage::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ObjectMessage)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

impl From<ObjectMessage> for Message {
    fn from(ObjectMessage(raw): ObjectMessage) -> Self {
        raw.into()
    }
}

impl From<RawMessage> for Message {
    fn from(raw: RawMessage) -> Self {
        let params = raw.params.unwrap_or_default();
        Self {
            id: raw.id,
            method: raw.method,
            name: params.name,
            uri: params.uri,
            version: params.version,
        }
    }
}

/// Parses a request body. Never panics; the depth is bounded by serde_json (128).
pub fn parse(body: &[u8]) -> Result<Body, BodyError> {
    // serde skips ignored members without checking their UTF-8; JSON must be UTF-8 throughout.
    if std::str::from_utf8(body).is_err() {
        return Err(BodyError::Parse);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let result = match first {
        Some(b'[') => serde_json::from_slice::<Vec<ObjectMessage>>(body)
            .map(|messages| Body::Batch(messages.into_iter().map(Message::from).collect())),
        Some(b'{') => serde_json::from_slice::<RawMessage>(body).map(|m| Body::Single(m.into())),
        Some(_) => {
            return Err(match serde_json::from_slice::<IgnoredAny>(body) {
                Ok(_) => BodyError::Invalid,
                Err(_) => BodyError::Parse,
            });
        }
        None => return Err(BodyError::Parse),
    };
    match result {
        Ok(Body::Batch(messages)) if messages.is_empty() => Err(BodyError::Invalid),
        Ok(body) => Ok(body),
        // A data error may come first in a body that is not JSON at all (an unclosed batch).
        Err(e) if e.is_data() && serde_json::from_slice::<IgnoredAny>(body).is_ok() => {
            Err(BodyError::Invalid)
        }
        Err(_) => Err(BodyError::Parse),
    }
}

/// A JSON-RPC error response object.
pub fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}
