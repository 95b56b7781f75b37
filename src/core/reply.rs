//! What the filter says itself: local replies, header edits for forwarded requests, RFC 6750
//! challenges and JSON error bodies. A leaf every feature builds its answers with.

use serde_json::json;

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
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

/// `{"error": .., "error_description": ..}`.
pub fn error_body(error: &str, description: &str) -> String {
    json!({"error": error, "error_description": description}).to_string()
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
    let mut value = String::from("Bearer ");
    if let Some((code, description)) = error {
        value.push_str(&format!(
            "error=\"{}\", error_description=\"{}\", ",
            code.as_str(),
            quoted_safe(description)
        ));
    }
    value.push_str(&format!("resource_metadata=\"{metadata_url}\""));
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
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
fn quoted_safe(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

/// An RFC 6749 `scope-token`: printable ASCII without space, `"` or `\`, so it can go into a
/// challenge's quoted `scope=` as it is.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
}
