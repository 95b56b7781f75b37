//! Credential extraction (RFC 6750 section 2): exactly one token, from the configured place.

use serde::Deserialize;

use super::error::ConfigError;
use super::request::{HeaderName, Request, is_http_token};
use super::url::unreserved;

/// The RFC 6750 query parameter; refused unless it is the configured location, since the MCP
/// authorization spec forbids tokens in the URI.
const URI_QUERY_PARAM: &str = "access_token";

/// Where the credential is looked for (`authorizationLocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header (lower-case name) whose value starts with `prefix` (matched case-insensitively).
    Header {
        /// Shared with every decision that removes it.
        name: HeaderName,
        prefix: String,
    },
    QueryParameter {
        name: String,
    },
    Cookie {
        name: String,
    },
}

/// `authorizationLocation` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum RawLocation {
    Header {
        name: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    QueryParameter {
        name: String,
    },
    Cookie {
        name: String,
    },
}

impl TokenLocation {
    /// `authorizationLocation`, validated; the `Authorization: Bearer` header when unset.
    pub fn from_config(raw: Option<RawLocation>) -> Result<Self, ConfigError> {
        let location = match raw {
            None => TokenLocation::Header {
                name: "authorization".into(),
                prefix: "Bearer ".to_string(),
            },
            Some(RawLocation::Header { name, prefix }) => {
                if !is_http_token(&name) {
                    return Err(ConfigError::new(
                        "authorizationLocation.header.name",
                        "not a valid HTTP header name",
                    ));
                }
                TokenLocation::Header {
                    name: name.to_ascii_lowercase().into(),
                    prefix: prefix.unwrap_or_default(),
                }
            }
            Some(RawLocation::QueryParameter { name }) => {
                if name.is_empty() || !name.bytes().all(unreserved) {
                    return Err(ConfigError::new(
                        "authorizationLocation.queryParameter.name",
                        "must be a non-empty query parameter name",
                    ));
                }
                TokenLocation::QueryParameter { name }
            }
            Some(RawLocation::Cookie { name }) => {
                if !is_http_token(&name) {
                    return Err(ConfigError::new(
                        "authorizationLocation.cookie.name",
                        "must be a non-empty cookie name",
                    ));
                }
                TokenLocation::Cookie { name }
            }
        };
        Ok(location)
    }
}

/// A token found in the request, and how to strip it before the request goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub token: &'a str,
    pub removal: Removal,
}

/// How the credential is taken out of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Remove this header.
    Header(HeaderName),
    /// Replace `:path` with this value (the query parameter removed).
    Path(String),
    /// Replace the cookie header with this value, or remove it when `None`.
    Cookie(Option<String>),
}

/// A request that carries credentials in a way RFC 6750 calls `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidRequest {
    MultipleCredentials,
    EmptyToken,
    TokenInUri,
}

impl InvalidRequest {
    pub fn description(self) -> &'static str {
        match self {
            Self::MultipleCredentials => "more than one credential in the request",
            Self::EmptyToken => "bearer scheme without a token",
            Self::TokenInUri => "access tokens in the URI are not accepted",
        }
    }
}

/// Finds the credential; `Ok(None)` when the request has none.
pub fn extract<'a>(
    location: &TokenLocation,
    request: &'a Request,
) -> Result<Option<Credential<'a>>, InvalidRequest> {
    let query_token = match location {
        TokenLocation::QueryParameter { name } => query_credential(request, name)?,
        _ => {
            if query_values(request, URI_QUERY_PARAM).next().is_some() {
                return Err(InvalidRequest::TokenInUri);
            }
            None
        }
    };
    let found = match location {
        TokenLocation::Header { name, prefix } => header_credential(request, name, prefix)?,
        TokenLocation::QueryParameter { .. } => {
            if header_token(request, "authorization", "Bearer ")?.is_some() {
                return Err(InvalidRequest::MultipleCredentials);
            }
            query_token
        }
        TokenLocation::Cookie { name } => {
            let cookie = cookie_credential(request, name)?;
            if cookie.is_some() && header_token(request, "authorization", "Bearer ")?.is_some() {
                return Err(InvalidRequest::MultipleCredentials);
            }
            cookie
        }
    };
    Ok(found)
}

fn header_credential<'a>(
    request: &'a Request,
    name: &HeaderName,
    prefix: &str,
) -> Result<Option<Credential<'a>>, InvalidRequest> {
    let credential = header_token(request, name.as_str(), prefix)?.map(|token| Credential {
        token,
        removal: Removal::Header(name.clone()),
    });
    Ok(credential)
}

/// The bearer token in header `name`, if it holds one.
fn header_token<'a>(
    request: &'a Request,
    name: &str,
    prefix: &str,
) -> Result<Option<&'a str>, InvalidRequest> {
    let mut values = request.header_values(name);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(InvalidRequest::MultipleCredentials);
    }
    let token = match strip_scheme(value, prefix) {
        Some(token) => token,
        // Another scheme (Basic, DPoP, ...) is not a bearer credential.
        None => return Ok(None),
    };
    if token.is_empty() {
        return Err(InvalidRequest::EmptyToken);
    }
    // Proxies join repeated headers with commas (Envoy does); no token contains one.
    if contains_byte(token, b',') {
        return Err(InvalidRequest::MultipleCredentials);
    }
    Ok(Some(token))
}

/// Whether `text` holds `needle`, eight bytes per step: a token is hundreds of bytes, and a byte
/// loop over it costs about 0.2 µs a request in V8.
fn contains_byte(text: &str, needle: u8) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([needle; 8]);
    let (words, rest) = text.as_bytes().as_chunks::<8>();
    // A word has a zero byte where it held the needle; `(x - 1) & !x` sets that byte's top bit.
    let holds = |word: &[u8; 8]| {
        let x = u64::from_ne_bytes(*word) ^ pattern;
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    words.iter().any(holds) || rest.contains(&needle)
}

/// Strips `prefix` case-insensitively; a prefix ending in a space accepts any run of spaces.
fn strip_scheme<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let scheme = prefix.trim_end();
    if scheme.is_empty() {
        return Some(value.trim());
    }
    let head = value.get(..scheme.len())?;
    if !head.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = value.get(scheme.len()..)?;
    if rest.is_empty() {
        return Some(rest);
    }
    if prefix.len() > scheme.len() && !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim())
}

fn query_values<'a>(request: &'a Request, name: &str) -> impl Iterator<Item = &'a str> {
    request
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key_is(key, name).then_some(value)
        })
}

/// Whether a query key names `name` once percent-decoded, as the upstream reads it: an
/// encoded spelling (`tok%65n`, `access%5Ftoken`) is the same parameter, never a second place
/// for a token to pass unverified (the decide fuzz target's oracle found that).
fn key_is(key: &str, name: &str) -> bool {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut decoded = Vec::with_capacity(key.len());
    let mut bytes = key.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let mut ahead = bytes.clone();
            if let (Some(high), Some(low)) =
                (ahead.next().and_then(hex), ahead.next().and_then(hex))
            {
                decoded.push(high.wrapping_shl(4) | low);
                bytes = ahead;
                continue;
            }
        }
        decoded.push(b);
    }
    decoded == name.as_bytes()
}

fn query_credential<'a>(
    request: &'a Request,
    name: &str,
) -> Result<Option<Credential<'a>>, InvalidRequest> {
    let mut values = query_values(request, name);
    let Some(token) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(InvalidRequest::MultipleCredentials);
    }
    if token.is_empty() {
        return Err(InvalidRequest::EmptyToken);
    }
    let kept: Vec<&str> = request
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !key_is(pair.split_once('=').map_or(*pair, |(k, _)| k), name))
        .collect();
    let path = if kept.is_empty() {
        request.path_only().to_string()
    } else {
        format!("{}?{}", request.path_only(), kept.join("&"))
    };
    Ok(Some(Credential {
        token,
        removal: Removal::Path(path),
    }))
}

fn cookie_credential<'a>(
    request: &'a Request,
    name: &str,
) -> Result<Option<Credential<'a>>, InvalidRequest> {
    let pairs = || {
        request
            .header_values("cookie")
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    };
    let mut matches = pairs().filter_map(|p| p.strip_prefix(name)?.strip_prefix('='));
    let Some(token) = matches.next() else {
        return Ok(None);
    };
    if matches.next().is_some() {
        return Err(InvalidRequest::MultipleCredentials);
    }
    if token.is_empty() {
        return Err(InvalidRequest::EmptyToken);
    }
    let rest: Vec<&str> = pairs()
        .filter(|p| p.split_once('=').map_or(*p, |(k, _)| k) != name)
        .collect();
    let remaining = (!rest.is_empty()).then(|| rest.join("; "));
    Ok(Some(Credential {
        token,
        removal: Removal::Cookie(remaining),
    }))
}

#[cfg(test)]
mod tests;
