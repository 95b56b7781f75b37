//! JWKS discovery: with `jwks` omitted, the keys are wherever the provider's own metadata
//! says (`jwks_uri`, OpenID Connect Discovery 1.0 section 3 and RFC 8414 section 2). The
//! document is only believed if it is the configured issuer's (section 4.3 / RFC 8414
//! section 3.3), and it cannot move the keys from `https` to `http`.

use std::fmt;

use serde::Deserialize;

use super::url::HttpUrl;

/// Why a metadata document names no usable JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    NotMetadata,
    IssuerMismatch { found: String },
    NoJwksUri,
    BadJwksUri(&'static str),
    Downgrade,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMetadata => f.write_str("the metadata is not a JSON object"),
            Self::IssuerMismatch { found } => write!(
                f,
                "the metadata is for issuer {found:?}, not the configured one"
            ),
            Self::NoJwksUri => f.write_str("the metadata has no jwks_uri"),
            Self::BadJwksUri(why) => write!(f, "jwks_uri: {why}"),
            Self::Downgrade => f.write_str("jwks_uri is http for an https issuer"),
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The JWKS URL named by `document`, the metadata of `issuer`.
pub fn jwks_uri(document: &[u8], issuer: &str) -> Result<HttpUrl, DiscoveryError> {
    let metadata: Metadata =
        serde_json::from_slice(document).map_err(|_| DiscoveryError::NotMetadata)?;
    match metadata.issuer {
        Some(found) if found == issuer => {}
        found => {
            return Err(DiscoveryError::IssuerMismatch {
                found: found.unwrap_or_default(),
            });
        }
    }
    let uri = metadata.jwks_uri.ok_or(DiscoveryError::NoJwksUri)?;
    let url = HttpUrl::parse(&uri).map_err(DiscoveryError::BadJwksUri)?;
    if url.scheme == "http" && issuer.starts_with("https://") {
        return Err(DiscoveryError::Downgrade);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://kc.example.com/realms/mcp";

    fn discover(document: serde_json::Value) -> Result<String, DiscoveryError> {
        jwks_uri(document.to_string().as_bytes(), ISSUER).map(|url| url.to_string())
    }

    #[test]
    fn the_issuers_own_jwks_uri_is_used() {
        let found = discover(json!({
            "issuer": ISSUER,
            "jwks_uri": "https://keys.example.com/realms/mcp/certs?v=2",
            "token_endpoint": "https://kc.example.com/realms/mcp/token"
        }));
        assert_eq!(
            found.unwrap(),
            "https://keys.example.com/realms/mcp/certs?v=2"
        );
    }

    #[test]
    fn documents_that_cannot_be_trusted_or_used_are_refused() {
        let jwks = "https://kc.example.com/certs";
        let cases = [
            (
                json!({"issuer": "https://evil.example.com/realms/mcp", "jwks_uri": jwks}),
                DiscoveryError::IssuerMismatch {
                    found: "https://evil.example.com/realms/mcp".into(),
                },
            ),
            (
                json!({"issuer": format!("{ISSUER}/"), "jwks_uri": jwks}),
                DiscoveryError::IssuerMismatch {
                    found: format!("{ISSUER}/"),
                },
            ),
            (
                json!({"jwks_uri": jwks}),
                DiscoveryError::IssuerMismatch {
                    found: String::new(),
                },
            ),
            (json!({"issuer": ISSUER}), DiscoveryError::NoJwksUri),
            (
                json!({"issuer": ISSUER, "jwks_uri": "/certs"}),
                DiscoveryError::BadJwksUri("not an absolute http(s) URL"),
            ),
            (
                json!({"issuer": ISSUER, "jwks_uri": "http://kc.example.com/certs"}),
                DiscoveryError::Downgrade,
            ),
            (
                json!({"issuer": ISSUER, "jwks_uri": 7}),
                DiscoveryError::NotMetadata,
            ),
            (json!(["not", "an", "object"]), DiscoveryError::NotMetadata),
        ];
        for (document, expected) in cases {
            assert_eq!(discover(document.clone()), Err(expected), "{document}");
        }
        assert_eq!(
            jwks_uri(b"<html>", ISSUER).unwrap_err().to_string(),
            "the metadata is not a JSON object"
        );
    }

    #[test]
    fn an_http_issuer_may_name_http_keys() {
        let url = jwks_uri(
            br#"{"issuer":"http://127.0.0.1:9000","jwks_uri":"http://127.0.0.1:9000/jwks"}"#,
            "http://127.0.0.1:9000",
        )
        .unwrap();
        assert_eq!(url.path_and_query, "/jwks");
    }
}
