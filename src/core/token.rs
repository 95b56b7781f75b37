//! Credential extraction (RFC 6750 section 2): exactly one token, from the configured place.

use super::request::Request;

/// The RFC 6750 query parameter; refused unless it is the configured location, since the MCP
/// authorization spec forbids tokens in the URI.
const URI_QUERY_PARAM: &str = "access_token";

/// Where the credential is looked for (`authorizationLocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header (lower-case name) whose value starts with `prefix` (matched case-insensitively).
    Header {
        name: String,
        prefix: String,
    },
    QueryParameter {
        name: String,
    },
    Cookie {
        name: String,
    },
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
    Header(String),
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
            if header_credential(request, "authorization", "Bearer ")?.is_some() {
                return Err(InvalidRequest::MultipleCredentials);
            }
            query_token
        }
        TokenLocation::Cookie { name } => {
            let cookie = cookie_credential(request, name)?;
            if cookie.is_some() && header_credential(request, "authorization", "Bearer ")?.is_some()
            {
                return Err(InvalidRequest::MultipleCredentials);
            }
            cookie
        }
    };
    Ok(found)
}

fn header_credential<'a>(
    request: &'a Request,
    name: &str,
    prefix: &str,
) -> Result<Option<Credential<'a>>, InvalidRequest> {
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
    if token.contains(',') {
        return Err(InvalidRequest::MultipleCredentials);
    }
    Ok(Some(Credential {
        token,
        removal: Removal::Header(name.to_string()),
    }))
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
mod tests {
    use super::*;

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            scheme: "https".into(),
            authority: "mcp.example.com".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn bearer() -> TokenLocation {
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc"] {
            let req = request("/mcp", &[("authorization", value)]);
            let found = extract(&bearer(), &req).unwrap().unwrap();
            assert_eq!(found.token, "abc", "{value}");
            assert_eq!(found.removal, Removal::Header("authorization".into()));
        }
    }

    #[test]
    fn other_schemes_and_absent_headers_are_no_credential() {
        for headers in [
            vec![],
            vec![("authorization", "Basic dXNlcjpwdw==")],
            vec![("authorization", "Bearerabc")],
            vec![("x-other", "Bearer abc")],
        ] {
            let req = request("/mcp", &headers);
            assert_eq!(extract(&bearer(), &req), Ok(None), "{headers:?}");
        }
    }

    #[test]
    fn malformed_credentials_are_invalid_requests() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], InvalidRequest);
        let cases: [Case; 7] = [
            (
                "/mcp",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                InvalidRequest::MultipleCredentials,
            ),
            (
                "/mcp",
                &[("authorization", "Bearer a,Bearer b")],
                InvalidRequest::MultipleCredentials,
            ),
            (
                "/mcp",
                &[("authorization", "Bearer")],
                InvalidRequest::EmptyToken,
            ),
            (
                "/mcp",
                &[("authorization", "Bearer   ")],
                InvalidRequest::EmptyToken,
            ),
            ("/mcp?access_token=abc", &[], InvalidRequest::TokenInUri),
            ("/mcp?access%5Ftoken=abc", &[], InvalidRequest::TokenInUri),
            (
                "/mcp?access_token=abc",
                &[("authorization", "Bearer abc")],
                InvalidRequest::TokenInUri,
            ),
        ];
        for (path, headers, expected) in cases {
            let req = request(path, headers);
            assert_eq!(
                extract(&bearer(), &req),
                Err(expected),
                "{path} {headers:?}"
            );
        }
    }

    #[test]
    fn query_location_removes_only_its_parameter() {
        let location = TokenLocation::QueryParameter {
            name: "token".into(),
        };
        let req = request("/mcp?a=1&token=abc&b=2", &[]);
        let found = extract(&location, &req).unwrap().unwrap();
        assert_eq!(found.token, "abc");
        assert_eq!(found.removal, Removal::Path("/mcp?a=1&b=2".into()));
        let only = request("/mcp?token=abc", &[]);
        let found = extract(&location, &only).unwrap().unwrap();
        assert_eq!(found.removal, Removal::Path("/mcp".into()));
        // An encoded spelling of the name is the same parameter to the upstream.
        let encoded = request("/mcp?token=a&tok%65n=b", &[]);
        assert_eq!(
            extract(&location, &encoded),
            Err(InvalidRequest::MultipleCredentials)
        );
        let twice = request("/mcp?token=a&token=b", &[]);
        assert_eq!(
            extract(&location, &twice),
            Err(InvalidRequest::MultipleCredentials)
        );
        let two_places = request("/mcp?token=a", &[("authorization", "Bearer b")]);
        assert_eq!(
            extract(&location, &two_places),
            Err(InvalidRequest::MultipleCredentials)
        );
    }

    #[test]
    fn cookie_location_rewrites_the_cookie_header() {
        let location = TokenLocation::Cookie { name: "at".into() };
        let req = request("/mcp", &[("cookie", "a=1; at=tok; b=2")]);
        let found = extract(&location, &req).unwrap().unwrap();
        assert_eq!(found.token, "tok");
        assert_eq!(found.removal, Removal::Cookie(Some("a=1; b=2".into())));
        let alone = request("/mcp", &[("cookie", "at=tok")]);
        assert_eq!(
            extract(&location, &alone).unwrap().unwrap().removal,
            Removal::Cookie(None)
        );
        let prefix_name = request("/mcp", &[("cookie", "att=x")]);
        assert_eq!(extract(&location, &prefix_name), Ok(None));
        let twice = request("/mcp", &[("cookie", "at=a"), ("cookie", "at=b")]);
        assert_eq!(
            extract(&location, &twice),
            Err(InvalidRequest::MultipleCredentials)
        );
    }
}
