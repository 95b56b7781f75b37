//! The request metadata headers of MCP 2026-07-28 (SEP-2243): `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name` and `Mcp-Param-{Name}`, and their agreement with the body.
//!
//! From 2026-07-28 on, a server that reads the body must refuse a body that disagrees with
//! these headers, so an intermediary may decide from them. For an older or absent version
//! nothing guarantees that, and the headers are never trusted: the body decides.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::jsonrpc::{Body, Message};

/// The first revision whose servers validate the mirrored headers against the body.
pub const MODERN: &str = "2026-07-28";
/// JSON-RPC `HeaderMismatch`: headers disagree with the body, or are missing or malformed.
pub const HEADER_MISMATCH: i64 = -32020;

const VERSION: &str = "mcp-protocol-version";
const METHOD: &str = "mcp-method";
const NAME: &str = "mcp-name";
const PARAM_PREFIX: &str = "mcp-param-";

/// The mirrored headers of a request that declares 2026-07-28 or later, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub version: String,
    pub method: String,
    /// `Mcp-Name`: `params.name`, or `params.uri` for resources.
    pub name: Option<String>,
    /// `Mcp-Param-{Name}` values by lower-case `{name}` (header names are case-insensitive).
    pub params: Vec<(String, String)>,
}

/// Which protocol era a request declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// Before 2026-07-28, or no (or no well-formed) version header: headers are not trusted.
    Legacy,
    Modern(Mirrored),
}

/// Why a modern request's headers were refused (the text goes into the `-32020` message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

/// Whether `version` names 2026-07-28 or a later revision. Versions are `YYYY-MM-DD` dates
/// (a later one keeps the 2026-07-28 semantics); anything else, `2026-13-01` included, is
/// treated as an older (legacy) version, whose headers are never trusted.
pub fn is_modern(version: &str) -> bool {
    let bytes = version.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    let in_range = |range: std::ops::Range<usize>, max: &str| {
        version
            .get(range)
            .is_some_and(|part| ("01"..=max).contains(&part))
    };
    shaped && in_range(5..7, "12") && in_range(8..10, "31") && version >= MODERN
}

/// Reads the era and, for a modern request, its mirrored headers (names lower-case, as
/// Envoy passes them).
pub fn read(headers: &[(String, String)]) -> Result<Era, Mismatch> {
    let versions: Vec<&str> = values(headers, VERSION).collect();
    let version = match versions.as_slice() {
        [one] if is_modern(one) => (*one).to_string(),
        _ => return Ok(Era::Legacy),
    };
    let method = single(headers, METHOD)?
        .ok_or_else(|| Mismatch("the Mcp-Method header is required".into()))?;
    let method = plain(&method, "Mcp-Method")?;
    let name = match single(headers, NAME)? {
        Some(raw) => Some(decode(&raw, "Mcp-Name")?),
        None => None,
    };
    if name.is_none() && requires_name(&method) {
        return Err(Mismatch(format!(
            "the Mcp-Name header is required for {method}"
        )));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (header, value) in headers {
        let lower = header.to_ascii_lowercase();
        let Some(param) = lower.strip_prefix(PARAM_PREFIX) else {
            continue;
        };
        let param = param.to_string();
        if param.is_empty() || params.iter().any(|(p, _)| *p == param) {
            return Err(Mismatch(format!(
                "the {header} header is malformed or repeated"
            )));
        }
        let value = decode(value, header)?;
        params.push((param, value));
    }
    Ok(Era::Modern(Mirrored {
        version,
        method,
        name,
        params,
    }))
}

/// `tools/call`, `prompts/get` and `resources/read` must carry `Mcp-Name`.
fn requires_name(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

fn values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// At most one value: a repeated header could be read differently by different hops.
fn single(headers: &[(String, String)], name: &str) -> Result<Option<String>, Mismatch> {
    let mut found = values(headers, name);
    let first = found.next().map(str::to_string);
    if found.next().is_some() {
        return Err(Mismatch(format!("the {name} header is repeated")));
    }
    Ok(first)
}

/// A header value as it must appear on the wire: visible ASCII, space and tab only.
fn plain(value: &str, header: &str) -> Result<String, Mismatch> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Mismatch(format!(
            "the {header} header has invalid characters"
        )))
    }
}

/// Decodes the `=?base64?{value}?=` form (UTF-8 inside); other values are taken as they are,
/// without the optional whitespace around a field value (RFC 9110 section 5.5).
pub fn decode(value: &str, header: &str) -> Result<String, Mismatch> {
    let value = plain(value.trim_matches([' ', '\t']), header)?;
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(value);
    };
    STANDARD
        .decode(inner)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Mismatch(format!("the {header} header is not valid base64 UTF-8")))
}

/// Whether the body says what the headers say: one message (a batch cannot be mirrored),
/// the same method, the same name or URI, and no other `_meta` protocol version.
pub fn agree(mirrored: &Mirrored, body: &Body) -> Result<(), Mismatch> {
    let Body::Single(message) = body else {
        return Err(Mismatch(
            "a batch body cannot match the Mcp-Method header".into(),
        ));
    };
    if message.method.as_deref() != Some(mirrored.method.as_str()) {
        return Err(Mismatch(format!(
            "Mcp-Method header value '{}' does not match body value '{}'",
            mirrored.method,
            message.method.as_deref().unwrap_or("")
        )));
    }
    if let Some(header) = &mirrored.name {
        let body_name = body_name(message);
        if body_name != Some(header.as_str()) {
            return Err(Mismatch(format!(
                "Mcp-Name header value '{header}' does not match body value '{}'",
                body_name.unwrap_or("")
            )));
        }
    }
    // A body without the version is the server's to refuse (-32602); only a different one is
    // a mismatch. The version picks the era and names no target, so nothing is bypassed.
    if message
        .version
        .as_deref()
        .is_some_and(|version| version != mirrored.version)
    {
        return Err(Mismatch(format!(
            "MCP-Protocol-Version header value '{}' does not match the body's _meta \
             io.modelcontextprotocol/protocolVersion",
            mirrored.version
        )));
    }
    Ok(())
}

/// `params.uri` for resource methods, `params.name` otherwise.
fn body_name(message: &Message) -> Option<&str> {
    match message.method.as_deref() {
        Some(method) if method.starts_with("resources/") => message.uri.as_deref(),
        _ => message.name.as_deref(),
    }
}
