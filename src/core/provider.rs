//! Fronting the identity provider (spec section 6): the gateway serves authorization-server
//! metadata adapted to each provider's quirks, and client registration, so MCP clients that
//! only speak RFC 8414 / RFC 7591 can log in. Pure functions of the upstream answers.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ConfigError;
use super::refresh::{DEFAULT_FETCH_TIMEOUT_MS, RemoteJwks};
use super::reply::{FIVE_MINUTES, LocalReply, NO_STORE, error_body};
use super::request::Request;
use super::rfc9207::PassageReturn;
use super::url::{
    HttpUrl, PathProblem, gateway_issuer, is_plain_path, path_problem, with_query_param,
};

/// Suffix of the gateway's client-registration path, after the authorization-server
/// metadata path (agentgateway's layout, so its users' routes keep working).
pub const REGISTRATION_SUFFIX: &str = "/client-registration";
/// Registration bodies are small JSON documents.
pub const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// Why the metadata of a provider that sends RFC 9207 `iss` is refused without a passage.
pub const ISS_WITHOUT_PASSAGE: &str = "the identity provider returns its own issuer in authorization responses (RFC 9207), which cannot match the gateway's: set provider.*.gatewayPrefix so the login runs through the gateway, or leave provider out so clients use the provider directly";
/// Upstream metadata larger than this is refused.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;

/// Header that routes a passage request (see [`passage_path`]) to the provider's Envoy
/// route. It is removed from every other request, so no client can steer a request there.
pub const ROUTE_HEADER: &str = "x-mcp-authn-route";
/// [`ROUTE_HEADER`]'s value on passage requests.
pub const ROUTE_TO_PROVIDER: &str = "idp";

/// Where Keycloak serves a realm's key set, under the issuer.
pub const KEYCLOAK_CERTS_PATH: &str = "/protocol/openid-connect/certs";

/// Identity providers the gateway fronts (section 6), each with its quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenID discovery at `{issuer}/.well-known/openid-configuration`, registration at
    /// `{issuer}/clients-registrations/openid-connect`, keys at `.../protocol/openid-connect/certs`.
    Keycloak,
    /// Needs `audience=` on the authorization endpoint to issue JWT access tokens.
    Auth0,
    /// A standards-following provider: RFC 8414 metadata, fronted as is.
    Oidc,
}

impl Provider {
    /// The upstream metadata document's path: OpenID discovery under the issuer for Keycloak
    /// and Auth0, the RFC 8414 path-inserted form for a standard provider.
    pub fn metadata_path(self, issuer: &HttpUrl) -> String {
        // Not `ProviderConfig::issuer_path`: the config calls this before a provider exists.
        let issuer_path = issuer.path().trim_end_matches('/');
        match self {
            Self::Keycloak | Self::Auth0 => {
                format!("{issuer_path}/.well-known/openid-configuration")
            }
            Self::Oidc => format!("/.well-known/oauth-authorization-server{issuer_path}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Keycloak => "keycloak",
            Self::Auth0 => "auth0",
            Self::Oidc => "oidc",
        }
    }
}

/// The fronted identity provider: which one, and how the filter reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub kind: Provider,
    /// The Envoy cluster for metadata and registration calls (default: `jwks.cluster`).
    pub cluster: String,
    /// The issuer as a URL, to derive the provider's endpoints.
    pub issuer: HttpUrl,
    /// `gatewayPrefix`: the gateway serves the provider's `{issuer path}/...` under
    /// `{prefix}{issuer path}/...` (`""` for no prefix), rewriting `:path` and routing it to
    /// the provider. `None`: the provider is reached directly.
    pub gateway_prefix: Option<String>,
    /// The issuer exactly as configured: what the provider writes into `iss` (RFC 9207).
    pub issuer_id: String,
    /// The gateway's issuer when `resourceMetadata.resource` fixes it.
    pub gateway_issuer: Option<String>,
    /// `clientId`: registration is answered locally with this pre-registered client.
    pub client_id: Option<String>,
    /// The first audience, which Auth0's authorization endpoint must name.
    pub audience: Option<String>,
    /// Timeout of the calls to the provider: the JWKS fetch's, or its default for inline keys.
    pub timeout_ms: u64,
    /// With a passage: how its redirects name the gateway as issuer (RFC 9207), made once.
    pub passage: Option<Arc<PassageReturn>>,
}

/// `provider.<kind>` as written.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderOptions {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    gateway_prefix: Option<String>,
}

impl ProviderOptions {
    /// The cluster named for the provider, if any (it also reaches discovered keys).
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }
}

impl ProviderConfig {
    /// Validates `provider.<kind>`. `remote`: the remote key source, whose cluster and timeout
    /// the provider calls share unless it names its own cluster.
    pub fn from_config(
        kind: Provider,
        options: ProviderOptions,
        issuer: &str,
        remote: Option<&RemoteJwks>,
        resource: Option<&str>,
        client_id: Option<String>,
        audience: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let path = format!("provider.{}", kind.name());
        let issuer_id = issuer.to_string();
        let issuer = HttpUrl::parse(issuer).map_err(|m| {
            ConfigError::new(
                "issuer",
                format!("{m} (a fronted provider needs a URL issuer)"),
            )
        })?;
        let cluster = match (options.cluster, remote) {
            (Some(c), _) if c.is_empty() => {
                return Err(ConfigError::new(
                    format!("{path}.cluster"),
                    "must not be empty",
                ));
            }
            (Some(c), _) => c,
            (None, Some(remote)) => remote.cluster.clone(),
            (None, None) => {
                return Err(ConfigError::new(
                    format!("{path}.cluster"),
                    "required: the Envoy cluster that reaches the provider (jwks is inline)",
                ));
            }
        };
        let mut provider = ProviderConfig {
            kind,
            cluster,
            issuer,
            gateway_prefix: None,
            issuer_id,
            gateway_issuer: resource.map(gateway_issuer),
            client_id,
            audience: audience.map(str::to_string),
            timeout_ms: remote.map_or(DEFAULT_FETCH_TIMEOUT_MS, |r| r.timeout_ms),
            passage: None,
        };
        if let Some(prefix) = options.gateway_prefix {
            let field = format!("{path}.gatewayPrefix");
            provider.gateway_prefix = Some(
                gateway_prefix(&prefix, &provider, resource)
                    .map_err(|m| ConfigError::new(field, m))?,
            );
            // `gatewayPrefix` requires a resource, so the gateway's issuer is fixed.
            provider.passage = provider
                .gateway_issuer
                .as_deref()
                .map(|gateway| Arc::new(PassageReturn::new(provider.issuer_id.clone(), gateway)));
        }
        Ok(provider)
    }

    /// The issuer's path without a trailing slash (`""` for an issuer at the origin).
    pub fn issuer_path(&self) -> &str {
        self.issuer.path().trim_end_matches('/')
    }
}

/// Checks `gatewayPrefix` and returns it without a trailing slash. The gateway paths it opens
/// must be plain, outside `/.well-known/`, and must not cover the MCP resource.
fn gateway_prefix(
    prefix: &str,
    provider: &ProviderConfig,
    resource: Option<&str>,
) -> Result<String, &'static str> {
    let prefix = prefix.trim_end_matches('/');
    if resource.is_none() {
        // The gateway's issuer, written into authorization responses (RFC 9207), must not
        // depend on the request.
        return Err("needs resourceMetadata.resource, which names the gateway's issuer");
    }
    if !prefix.is_empty() && !prefix.starts_with('/') {
        return Err("must be a path starting with /");
    }
    let problem = path_problem(prefix);
    if problem == Some(PathProblem::Escape)
        || prefix.contains(['?', '#'])
        || !prefix.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err("must be a plain path (no escapes, query, fragment or parameters)");
    }
    if problem == Some(PathProblem::Segment) {
        return Err("must not contain empty or dot segments");
    }
    let base = format!("{prefix}{}", provider.issuer_path());
    if base.is_empty() {
        return Err(
            "must not be empty when the issuer has no path: every request would go to the provider",
        );
    }
    if base == "/.well-known" || base.starts_with("/.well-known/") {
        return Err("must not open paths under /.well-known/");
    }
    let resource_path = resource
        .and_then(|r| HttpUrl::parse(r).ok())
        .map(|url| url.path().to_string());
    if let Some(resource_path) = resource_path
        && (resource_path == base || resource_path.starts_with(&format!("{base}/")))
    {
        return Err("opens the MCP resource's own path to the provider");
    }
    Ok(prefix.to_string())
}

/// The gateway's own URLs, as the client that asked sees the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrls {
    /// `scheme://authority` of the gateway.
    pub origin: String,
    /// The issuer the gateway announces (`authorization_servers` of the resource).
    pub issuer: String,
    /// Where the gateway takes client registrations.
    pub registration: String,
}

/// What the filter asks the provider for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpCallKind {
    /// Authorization-server metadata, adapted for the client that asked.
    Metadata(GatewayUrls),
    /// RFC 7591 registration forwarded to the provider (Keycloak's endpoint).
    Registration,
}

/// A call to the provider through its Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpCall {
    pub kind: IdpCallKind,
    pub cluster: String,
    pub method: &'static str,
    pub authority: String,
    pub path: String,
    /// The client's request body must be read first (and, upstream, sent along).
    pub needs_body: bool,
    pub timeout_ms: u64,
}

/// Plans the call for a metadata request at `/.well-known/...{suffix}`.
/// `origin`: the gateway's, as the client sees it.
pub fn metadata_call(provider: &ProviderConfig, origin: String, suffix: &str) -> IdpCall {
    let gateway_issuer = match &provider.gateway_issuer {
        Some(issuer) => issuer.clone(),
        None => gateway_issuer(&format!("{origin}{suffix}")),
    };
    let registration_url = format!(
        "{origin}/.well-known/oauth-authorization-server{}{REGISTRATION_SUFFIX}",
        gateway_issuer.strip_prefix(&origin).unwrap_or_default()
    );
    IdpCall {
        kind: IdpCallKind::Metadata(GatewayUrls {
            origin,
            issuer: gateway_issuer,
            registration: registration_url,
        }),
        cluster: provider.cluster.clone(),
        method: "GET",
        authority: provider.issuer.authority.clone(),
        path: provider.kind.metadata_path(&provider.issuer),
        needs_body: false,
        timeout_ms: provider.timeout_ms,
    }
}

/// Whether the gateway takes registrations: answered locally with `clientId`, or forwarded
/// to a provider that takes them (else the provider's own endpoint is advertised unchanged).
pub fn offers_registration(provider: &ProviderConfig) -> bool {
    provider.client_id.is_some() || registration_call(provider).is_some()
}

/// Plans a registration forwarded to the provider: Keycloak's endpoint; `None` for a provider
/// that takes none.
pub fn registration_call(provider: &ProviderConfig) -> Option<IdpCall> {
    if provider.kind != Provider::Keycloak {
        return None;
    }
    let issuer_path = provider.issuer_path();
    Some(IdpCall {
        kind: IdpCallKind::Registration,
        cluster: provider.cluster.clone(),
        method: "POST",
        authority: provider.issuer.authority.clone(),
        path: format!("{issuer_path}/clients-registrations/openid-connect"),
        needs_body: true,
        timeout_ms: provider.timeout_ms,
    })
}

/// How a provider call ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpAnswer<'a> {
    /// An HTTP answer (any status), with its content type.
    Response {
        status: u32,
        content_type: Option<&'a str>,
        body: &'a [u8],
    },
    /// No answer: the call could not be made, the upstream was unreachable or timed out.
    Unavailable(&'a str),
}

/// Turns the provider's answer into the reply for the client.
pub fn finish(
    provider: Option<&ProviderConfig>,
    kind: &IdpCallKind,
    answer: IdpAnswer<'_>,
) -> LocalReply {
    // 502/503/504 are what Envoy answers for a provider it cannot reach or that timed out
    // (and what a provider says when it is down): docs/identity-providers.md's "down", a JSON 503, never
    // Envoy's own text passed on.
    let answer = match answer {
        IdpAnswer::Response {
            status: 502..=504, ..
        } => IdpAnswer::Unavailable("gateway status"),
        other => other,
    };
    match kind {
        IdpCallKind::Metadata(gateway) => match answer {
            IdpAnswer::Response {
                status: 200, body, ..
            } => match adapt_metadata(provider, body, gateway) {
                Ok(document) => LocalReply::json(200, document)
                    .public()
                    .with("cache-control", FIVE_MINUTES),
                Err(why) => gateway_error(502, why),
            },
            IdpAnswer::Response { .. } => {
                gateway_error(502, "the identity provider refused the metadata request")
            }
            IdpAnswer::Unavailable(_) => gateway_error(503, "the identity provider is unreachable"),
        },
        IdpCallKind::Registration => match answer {
            IdpAnswer::Response {
                status,
                content_type,
                body,
            } => LocalReply {
                status,
                headers: vec![(
                    "content-type".into(),
                    content_type.unwrap_or("application/json").to_string(),
                )],
                body: String::from_utf8_lossy(body).into_owned(),
            }
            .with("cache-control", NO_STORE)
            .public(),
            IdpAnswer::Unavailable(_) => gateway_error(503, "the identity provider is unreachable"),
        },
    }
}

/// The provider's metadata, adapted: the gateway is the issuer, endpoints under the issuer
/// move into the gateway's passage when there is one, registration goes through the gateway
/// where it helps, and Auth0's authorization endpoint names the audience.
pub fn adapt_metadata(
    provider: Option<&ProviderConfig>,
    upstream: &[u8],
    gateway: &GatewayUrls,
) -> Result<String, &'static str> {
    if upstream.len() > MAX_METADATA_BYTES {
        return Err("the identity provider's metadata is too large");
    }
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(upstream) else {
        return Err("the identity provider's metadata is not a JSON object");
    };
    let Some(provider) = provider else {
        return Err("no provider is configured");
    };
    match &provider.gateway_prefix {
        Some(prefix) => into_passage(&mut doc, provider, &format!("{}{prefix}", gateway.origin)),
        // RFC 9207: the provider names itself in `iss`, and only a login that runs through the
        // passage can be made to name the gateway (rfc9207.rs). Advertising the gateway as
        // issuer would make every careful client refuse the login after the user signed in.
        None if doc.get("authorization_response_iss_parameter_supported") == Some(&json!(true)) => {
            return Err(ISS_WITHOUT_PASSAGE);
        }
        None => {}
    }
    doc.insert("issuer".into(), json!(gateway.issuer));
    if offers_registration(provider) {
        doc.insert("registration_endpoint".into(), json!(gateway.registration));
    }
    if provider.kind == Provider::Auth0
        && let Some(audience) = &provider.audience
        && let Some(Value::String(endpoint)) = doc.get("authorization_endpoint")
    {
        let endpoint = with_query_param(endpoint, "audience", audience);
        doc.insert("authorization_endpoint".into(), json!(endpoint));
    }
    Ok(Value::Object(doc).to_string())
}

/// Endpoints under the issuer (`*_endpoint`, `jwks_uri`) are rewritten to the same path
/// under `passage_base`, so a client that only reaches the gateway completes the flow.
fn into_passage(doc: &mut Map<String, Value>, provider: &ProviderConfig, passage_base: &str) {
    let issuer_path = provider.issuer_path();
    let upstream_base = format!("{}{issuer_path}", provider.issuer.origin());
    for (key, value) in doc.iter_mut() {
        if !(key.ends_with("_endpoint") || key == "jwks_uri") {
            continue;
        }
        if let Value::String(url) = value
            && let Some(rest) = url.strip_prefix(&upstream_base)
            && rest.starts_with('/')
        {
            *url = format!("{passage_base}{issuer_path}{rest}");
        }
    }
}

/// The provider's own path (and query) for a request in the gateway's passage: a plain path
/// strictly inside `{gatewayPrefix}{issuer path}/` loses the prefix. Nothing outside the
/// issuer's subtree (an admin console, another realm) is reachable, and no dot segment or
/// escape can climb out of it.
pub fn passage_path(provider: &ProviderConfig, request: &Request) -> Option<String> {
    let prefix = provider.gateway_prefix.as_deref()?;
    let own_path = request.path_only().strip_prefix(prefix)?;
    let strictly_inside = |base: &str| {
        own_path
            .strip_prefix(base)
            .is_some_and(|inside| inside.starts_with('/') && inside != "/")
    };
    if !(strictly_inside(provider.issuer_path()) || keycloak_theme(provider, request, own_path))
        || !is_plain_path(request.path_only())
    {
        return None;
    }
    request.path.strip_prefix(prefix).map(str::to_string)
}

/// Keycloak's login pages load their theme (styles, scripts, images) from `{base}/resources/`,
/// next to `{base}/realms/`: static files, so only `GET` and `HEAD` pass.
fn keycloak_theme(provider: &ProviderConfig, request: &Request, own_path: &str) -> bool {
    let Some((base, _realm)) = provider.issuer_path().rsplit_once("/realms/") else {
        return false;
    };
    provider.kind == Provider::Keycloak
        && matches!(request.method.as_str(), "GET" | "HEAD")
        && own_path
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix("/resources/"))
            .is_some_and(|file| !file.is_empty())
}

/// RFC 7591 answer for a pre-registered public client: 201 with the client id and the
/// client's own metadata echoed (`redirect_uris` above all).
pub fn local_registration(client_id: &str, request_body: &[u8], now: u64) -> LocalReply {
    let requested = match serde_json::from_slice::<Value>(request_body) {
        Ok(Value::Object(map)) => map,
        _ => return registration_error("invalid_client_metadata", "the body is not a JSON object"),
    };
    let Some(Value::Array(redirect_uris)) = requested.get("redirect_uris") else {
        return registration_error("invalid_redirect_uri", "redirect_uris is required");
    };
    if redirect_uris.is_empty() || !redirect_uris.iter().all(Value::is_string) {
        return registration_error("invalid_redirect_uri", "redirect_uris must be strings");
    }
    let mut answer = Map::new();
    for echoed in [
        "redirect_uris",
        "client_name",
        "scope",
        "grant_types",
        "response_types",
    ] {
        if let Some(value) = requested.get(echoed) {
            answer.insert(echoed.into(), value.clone());
        }
    }
    answer.insert("client_id".into(), json!(client_id));
    answer.insert("client_id_issued_at".into(), json!(now));
    answer.insert("token_endpoint_auth_method".into(), json!("none"));
    answer
        .entry("grant_types")
        .or_insert(json!(["authorization_code", "refresh_token"]));
    answer.entry("response_types").or_insert(json!(["code"]));
    LocalReply::json(201, Value::Object(answer).to_string())
        .with("cache-control", NO_STORE)
        .public()
}

fn registration_error(error: &str, description: &str) -> LocalReply {
    LocalReply::json(400, error_body(error, description))
        .with("cache-control", NO_STORE)
        .public()
}

fn gateway_error(status: u32, description: &str) -> LocalReply {
    LocalReply::json(status, error_body("temporarily_unavailable", description))
        .public()
        .with("cache-control", NO_STORE)
}
#[cfg(test)]
mod tests;
