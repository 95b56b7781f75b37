//! The RFC 9728 protected-resource metadata document (`resourceMetadata`), and the
//! `resource_metadata` URL that challenges point to.

use serde_json::{Map, Value, json};

use super::error::ConfigError;
use super::reply::{OFFLINE_ACCESS, is_scope_token};
use super::request::Request;
use super::url::{HttpUrl, gateway_issuer, percent_encode, push_percent_encoded, url_safe};

/// The well-known prefix of RFC 9728.
pub const PRM_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// The MCP authorization spec revision the document advertises unless configured otherwise.
const MCP_PROTOCOL_VERSION: &str = "2025-06-18";

/// Who the document names as authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthorizationServer {
    Issuer(String),
    /// The gateway fronts the provider: the resource itself is the issuer identifier, so the
    /// client finds the metadata at `/.well-known/oauth-authorization-server{resource path}`.
    Gateway,
}

/// `resourceMetadata`, validated, with everything request-independent computed at load.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceMetadata {
    resource: Option<(String, HttpUrl)>,
    /// `authorization_servers`, in the configured order of the issuers (clients take the first).
    authorization_servers: Vec<AuthorizationServer>,
    /// Configured members, already in snake_case.
    fields: Map<String, Value>,
    /// `scope="..."` content for challenges, from `scopesSupported`.
    scope_hint: Option<String>,
    /// The whole document when it does not depend on the request.
    static_document: Option<String>,
    /// With a fixed resource: the challenge URL up to the request's path, made at load.
    metadata_url_base: Option<String>,
    /// Said at load: something configured was dropped.
    pub warning: Option<String>,
}

impl ResourceMetadata {
    pub fn from_config(
        raw: Map<String, Value>,
        issuer: &str,
        gateway_is_authorization_server: bool,
    ) -> Result<Self, ConfigError> {
        Self::listing(raw, &[(issuer, gateway_is_authorization_server)])
    }

    /// The document of a resource that trusts several issuers: `issuers` in order, each with
    /// whether the gateway fronts it (then the gateway's issuer stands in its place).
    pub fn listing(raw: Map<String, Value>, issuers: &[(&str, bool)]) -> Result<Self, ConfigError> {
        let mut fields = Map::new();
        let mut resource = None;
        let mut scope_hint = None;
        let mut warning = None;
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
                    let scopes = scope_list(&value, &path)?;
                    let kept: Vec<&str> =
                        scopes.split(' ').filter(|s| *s != OFFLINE_ACCESS).collect();
                    if kept.len() != scopes.split(' ').count() {
                        // Refresh tokens are not a resource requirement (MCP 2026-07-28);
                        // clients still find offline_access in the provider's own metadata.
                        warning = Some(format!(
                            "{path}: offline_access dropped; a protected resource does not \
                             advertise or challenge for it"
                        ));
                    }
                    scope_hint = (!kept.is_empty()).then(|| kept.join(" "));
                    fields.insert(snake_case(&key), json!(kept));
                    continue;
                }
                "authorizationServers" | "authorization_servers" => {
                    let listed = value.as_array().is_some_and(|servers| {
                        !servers.is_empty()
                            && servers
                                .iter()
                                .all(|s| s.as_str().is_some_and(|s| !s.is_empty()))
                    });
                    if !listed {
                        return Err(ConfigError {
                            path,
                            message: "must list at least one authorization server URL \
                                      (MCP clients find the authorization server only here)"
                                .into(),
                        });
                    }
                }
                _ => {}
            }
            fields.insert(snake_case(&key), value);
        }
        let authorization_servers = issuers
            .iter()
            .map(|&(issuer, fronted)| {
                if fronted {
                    AuthorizationServer::Gateway
                } else {
                    AuthorizationServer::Issuer(issuer.to_string())
                }
            })
            .collect();
        let mut metadata = Self {
            resource,
            authorization_servers,
            fields,
            scope_hint,
            static_document: None,
            metadata_url_base: None,
            warning,
        };
        if let Some((text, url)) = &metadata.resource {
            metadata.static_document = Some(metadata.render(text));
            let origin = percent_encode(&url.origin(), url_safe);
            metadata.metadata_url_base = Some(format!("{origin}{PRM_PREFIX}"));
        }
        Ok(metadata)
    }

    /// The configured canonical resource URI, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_ref().map(|(text, _)| text.as_str())
    }

    /// The configured resource as a URL: where its document lives (`PRM_PREFIX{path}`).
    pub fn resource_url(&self) -> Option<&HttpUrl> {
        self.resource.as_ref().map(|(_, url)| url)
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
        let mut url = match &self.metadata_url_base {
            Some(base) => {
                let mut url = String::with_capacity(base.len().saturating_add(suffix.len()));
                url.push_str(base);
                url
            }
            None => {
                // The request's authority is client-controlled too: encode it like the path,
                // so neither can end the quoted `resource_metadata` value.
                let mut url = percent_encode(&request.external_origin(), url_safe);
                url.push_str(PRM_PREFIX);
                url
            }
        };
        push_percent_encoded(&mut url, suffix, url_safe);
        url
    }

    /// The document served at `PRM_PREFIX{suffix}`.
    pub fn document(&self, request: &Request, suffix: &str) -> String {
        if let Some(document) = &self.static_document {
            return document.clone();
        }
        let origin = request.external_origin();
        let resource = format!("{origin}{}", percent_encode(suffix, url_safe));
        self.render(&resource)
    }

    fn render(&self, resource: &str) -> String {
        let servers: Vec<String> = self
            .authorization_servers
            .iter()
            .map(|server| match server {
                AuthorizationServer::Issuer(issuer) => issuer.clone(),
                AuthorizationServer::Gateway => gateway_issuer(resource),
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("resource".into(), json!(resource));
        doc.insert("authorization_servers".into(), json!(servers));
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
        .map(|item| item.as_str().filter(|s| is_scope_token(s)).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(scopes.join(" "))
}

/// `scopesSupported` -> `scopes_supported`; keys already in snake_case are unchanged.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len().saturating_add(4));
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

#[cfg(test)]
mod tests;
