//! What the filter says to clients: the RFC 9728 protected-resource metadata document, the
//! RFC 6750 `WWW-Authenticate` challenge, and JSON error bodies.

use serde_json::{Map, Value, json};

use super::config::ConfigError;
use super::request::Request;
use super::url::HttpUrl;

/// The well-known prefix of RFC 9728.
pub const PRM_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// The MCP authorization spec revision the document advertises unless configured otherwise.
const MCP_PROTOCOL_VERSION: &str = "2025-06-18";

/// Who the document names as authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthorizationServer {
    Issuer(String),
    /// The gateway fronts the provider: its own origin.
    Gateway,
}

/// `resourceMetadata`, validated, with everything request-independent computed at load.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceMetadata {
    resource: Option<(String, HttpUrl)>,
    authorization_server: AuthorizationServer,
    /// Configured members, already in snake_case.
    fields: Map<String, Value>,
    /// `scope="..."` content for challenges, from `scopesSupported`.
    scope_hint: Option<String>,
    /// The whole document when it does not depend on the request.
    static_document: Option<String>,
}

impl ResourceMetadata {
    pub fn from_config(
        raw: Map<String, Value>,
        issuer: &str,
        gateway_is_authorization_server: bool,
    ) -> Result<Self, ConfigError> {
        let mut fields = Map::new();
        let mut resource = None;
        let mut scope_hint = None;
        for (key, value) in raw {
            let path = format!("resourceMetadata.{key}");
            match key.as_str() {
                "resource" => {
                    let text = value.as_str().ok_or_else(|| ConfigError {
                        path: path.clone(),
                        message: "must be a string".into(),
                    })?;
                    let url = HttpUrl::parse(text).map_err(|m| ConfigError {
                        path: path.clone(),
                        message: m.into(),
                    })?;
                    resource = Some((text.to_string(), url));
                }
                "scopesSupported" | "scopes_supported" => {
                    scope_hint = Some(scope_list(&value, &path)?);
                }
                _ => {}
            }
            fields.insert(snake_case(&key), value);
        }
        let authorization_server = if gateway_is_authorization_server {
            AuthorizationServer::Gateway
        } else {
            AuthorizationServer::Issuer(issuer.to_string())
        };
        let mut metadata = Self {
            resource,
            authorization_server,
            fields,
            scope_hint,
            static_document: None,
        };
        if let Some((text, url)) = &metadata.resource {
            metadata.static_document = Some(metadata.render(text, &url.origin()));
        }
        Ok(metadata)
    }

    /// The configured canonical resource URI, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_ref().map(|(text, _)| text.as_str())
    }

    pub fn scope_hint(&self) -> Option<&str> {
        self.scope_hint.as_deref()
    }

    /// Base of well-known URLs: the configured resource's origin, else the request's.
    pub fn origin_for(&self, request: &Request) -> String {
        match &self.resource {
            Some((_, url)) => url.origin(),
            None => request.external_origin(),
        }
    }

    /// The `resource_metadata` URL for a protected request (RFC 9728 section 3.1).
    pub fn metadata_url(&self, request: &Request) -> String {
        let path = request.path_only();
        let suffix = if path == "/" { "" } else { path };
        format!(
            "{}{PRM_PREFIX}{}",
            self.origin_for(request),
            url_safe(suffix)
        )
    }

    /// The document served at `PRM_PREFIX{suffix}`.
    pub fn document(&self, request: &Request, suffix: &str) -> String {
        if let Some(document) = &self.static_document {
            return document.clone();
        }
        let origin = request.external_origin();
        let resource = format!("{origin}{}", url_safe(suffix));
        self.render(&resource, &origin)
    }

    fn render(&self, resource: &str, origin: &str) -> String {
        let server = match &self.authorization_server {
            AuthorizationServer::Issuer(issuer) => issuer.as_str(),
            AuthorizationServer::Gateway => origin,
        };
        let mut doc = Map::new();
        doc.insert("resource".into(), json!(resource));
        doc.insert("authorization_servers".into(), json!([server]));
        doc.insert("mcp_protocol_version".into(), json!(MCP_PROTOCOL_VERSION));
        doc.insert("resource_type".into(), json!("mcp-server"));
        for (key, value) in &self.fields {
            doc.insert(key.clone(), value.clone());
        }
        Value::Object(doc).to_string()
    }
}

fn scope_list(value: &Value, path: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError {
        path: path.to_string(),
        message: "must be an array of scope tokens (no spaces, quotes or backslashes)".into(),
    };
    let items = value.as_array().ok_or_else(bad)?;
    let scopes = items
        .iter()
        .map(|item| {
            item.as_str()
                .filter(|s| !s.is_empty() && s.bytes().all(is_scope_byte))
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(scopes.join(" "))
}

/// RFC 6749 `scope-token` characters.
fn is_scope_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}

/// `scopesSupported` -> `scopes_supported`; keys already in snake_case are unchanged.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encodes what must not appear raw in a URL inside a quoted header value or JSON.
fn url_safe(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'\\' | b'<' | b'>' | b'`' | b'{' | b'}' | b'^' | b'|'
            )
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// RFC 6750 limits `error_description` to printable ASCII without `"` and `\`.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

/// `{"error": .., "error_description": ..}`.
pub fn error_body(error: &str, description: &str) -> String {
    json!({"error": error, "error_description": description}).to_string()
}
