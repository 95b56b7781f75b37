//! What the filter says itself: local replies, header edits for forwarded requests, RFC 6750
//! challenges and JSON error bodies. A leaf every feature builds its answers with.

use super::request::HeaderName;

/// Never advertised, challenged for or required by a protected resource (MCP 2026-07-28):
/// refresh tokens are not a resource requirement.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// `Cache-Control` of answers that may be cached briefly (metadata, key sets).
pub const FIVE_MINUTES: &str = "max-age=300";
/// `Cache-Control` of answers about one caller or one moment.
pub const NO_STORE: &str = "no-store";

/// A locally generated response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl LocalReply {
    /// A JSON answer; add caching and other headers with [`LocalReply::with`].
    pub fn json(status: u32, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// The reply with one more header.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Readable by any origin: discovery documents and key sets are fetched by browser clients.
    pub fn public(self) -> Self {
        self.with("access-control-allow-origin", "*")
    }
}

/// Header changes for a forwarded request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub remove: Vec<HeaderName>,
    pub set: Vec<(String, String)>,
}

/// `{"error": .., "error_description": ..}`, written directly (no JSON tree: a 401 is a hot
/// path).
pub fn error_body(error: &str, description: &str) -> String {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{\"error\":{},\"error_description\":{}}}",
        quoted(error),
        quoted(description)
    )
}

/// 405 with `Allow`, the same body wherever a method is refused.
pub fn method_not_allowed(allow: &str) -> LocalReply {
    LocalReply::json(
        405,
        error_body("method_not_allowed", "method not allowed here"),
    )
    .with("allow", allow)
}

/// RFC 6750 error codes used in challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// RFC 6750 section 3.1: 400, 401 and 403.
    fn status(self) -> u32 {
        match self {
            Self::InvalidRequest => 400,
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
        }
    }
}

/// `Bearer [error="..", error_description="..", ]resource_metadata="..."[, scope=".."]`.
/// Without an error code (no credential presented) there is no `error` attribute (RFC 6750 3.1).
pub fn challenge(
    metadata_url: &str,
    scope: Option<&str>,
    error: Option<(ErrorCode, &str)>,
) -> String {
    let mut value = String::with_capacity(metadata_url.len().saturating_add(128));
    value.push_str("Bearer ");
    if let Some((code, description)) = error {
        value.push_str("error=\"");
        value.push_str(code.as_str());
        value.push_str("\", error_description=\"");
        value.extend(description.chars().filter(|c| is_quoted_safe(*c)));
        value.push_str("\", ");
    }
    value.push_str("resource_metadata=\"");
    value.push_str(metadata_url);
    value.push('"');
    if let Some(scope) = scope {
        value.push_str(", scope=\"");
        value.push_str(scope);
        value.push('"');
    }
    value
}

/// The challenge as a whole reply: 401 without a credential, else the code's status, with the
/// same error in a JSON body.
pub fn challenge_reply(
    metadata_url: &str,
    scope: Option<&str>,
    error: Option<(ErrorCode, &str)>,
) -> LocalReply {
    let (status, body) = match error {
        None => (
            401,
            error_body("unauthorized", "a bearer token is required"),
        ),
        Some((code, description)) => (code.status(), error_body(code.as_str(), description)),
    };
    LocalReply {
        status,
        headers: vec![
            (
                "www-authenticate".into(),
                challenge(metadata_url, scope, error),
            ),
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), NO_STORE.into()),
        ],
        body,
    }
}

/// RFC 6750 limits `error_description` to printable ASCII without `"` and `\`.
fn is_quoted_safe(c: char) -> bool {
    matches!(c, ' '..='~') && c != '"' && c != '\\'
}

/// An RFC 6749 `scope-token`: printable ASCII without space, `"` or `\`, so it can go into a
/// challenge's quoted `scope=` as it is.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_json() {
        assert_eq!(
            error_body("unauthorized", "a bearer token is required"),
            r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
        );
        assert_eq!(
            error_body("invalid_token", "quote \" here"),
            r#"{"error":"invalid_token","error_description":"quote \" here"}"#
        );
    }

    #[test]
    fn challenge_replies_take_the_status_of_their_error() {
        let url = "https://gw/.well-known/oauth-protected-resource/mcp";
        let cases = [
            (None, 401, "unauthorized"),
            (
                Some((ErrorCode::InvalidRequest, "two tokens")),
                400,
                "invalid_request",
            ),
            (
                Some((ErrorCode::InvalidToken, "token expired")),
                401,
                "invalid_token",
            ),
            (
                Some((ErrorCode::InsufficientScope, "needs more")),
                403,
                "insufficient_scope",
            ),
        ];
        for (error, status, code) in cases {
            let reply = challenge_reply(url, Some("mcp:read"), error);
            assert_eq!(reply.status, status, "{code}");
            assert_eq!(reply.headers[0].1, challenge(url, Some("mcp:read"), error));
            assert_eq!(
                reply.headers[1..],
                [
                    ("content-type".to_string(), "application/json".to_string()),
                    ("cache-control".to_string(), "no-store".to_string()),
                ]
            );
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(body["error"], code);
        }
    }

    #[test]
    fn every_405_is_the_same_json_with_its_allow_header() {
        let reply = method_not_allowed("GET, HEAD");
        assert_eq!(reply.status, 405);
        assert_eq!(
            reply.body,
            r#"{"error":"method_not_allowed","error_description":"method not allowed here"}"#
        );
        assert!(
            reply
                .headers
                .contains(&("allow".into(), "GET, HEAD".into()))
        );
        assert!(
            reply
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
    }

    #[test]
    fn scope_tokens_are_printable_ascii_without_space_quote_or_backslash() {
        for good in ["mcp:read", "a", "!#[]~"] {
            assert!(is_scope_token(good), "{good}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\u{7f}"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
