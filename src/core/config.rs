//! Plugin configuration: agentgateway-compatible field names, strict parsing, validation with
//! field paths, and everything per-request work needs computed once at load.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::alg::Verifier;
use super::authz::{McpAuthorization, RawMcpAuthorization, TRUSTS_SERVER_HEADER_VALIDATION};
use super::error::ConfigError;
use super::jwks::{KeyPolicy, KeySet, MAX_RSA_BITS_LIMIT, MIN_RSA_BITS};
use super::metadata::ResourceMetadata;
use super::provider::{
    KEYCLOAK_CERTS_PATH, Provider, ProviderConfig, ProviderOptions, ROUTE_HEADER,
};
use super::refresh::{JwksLocation, RemoteJwks};
use super::request::{HeaderName, is_http_token};
use super::token::{RawLocation, TokenLocation};
use super::token_cache::CachePolicy;
use super::url::HttpUrl;
use super::verify::ClaimRules;

/// Default and bounds of `jwtValidationOptions.clockSkewSeconds`.
const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
const MAX_CLOCK_SKEW_SECS: u64 = 3600;
/// Default and bounds of `jwtValidationOptions.maxTokenBytes`.
const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
/// Logged at load: the filter reads the body after letting the headers go on, so without a
/// buffer filter behind it the router opens the upstream request of a call it then denies.
const MCP_AUTHORIZATION_NEEDS_BUFFER: &str = "mcpAuthorization: put envoy.filters.http.buffer \
     after this filter on MCP routes; without it a denied call still opens a request at the \
     MCP server (its headers arrive, then it is reset)";
/// What happens to requests without a valid token (spec section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    #[serde(alias = "Strict")]
    Strict,
    #[serde(alias = "Optional")]
    Optional,
    #[serde(alias = "Permissive")]
    Permissive,
}

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Inline(Arc<KeySet>),
    Remote(RemoteJwks),
}

/// A claim copied into a request header for the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: String,
    pub header: String,
}

/// The validated configuration, with per-request values precomputed.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub provider: Option<ProviderConfig>,
    pub keys: KeySource,
    pub claims: ClaimRules,
    pub location: TokenLocation,
    pub max_token_bytes: usize,
    /// What every key set (inline or fetched) accepts.
    pub key_policy: KeyPolicy,
    pub claim_headers: Vec<ClaimHeader>,
    /// Headers removed from every forwarded request: the claim headers, and the provider route
    /// header when a passage exists (`decision::spoof_guard`).
    pub spoofable_headers: Vec<HeaderName>,
    pub token_cache: CachePolicy,
    pub metadata: ResourceMetadata,
    /// Accepted but risky settings, for the host to log at load.
    pub warnings: Vec<String>,
    /// `mcpAuthorization`: tool-level rules, scope requirements and list filtering.
    pub mcp_authorization: Option<Arc<McpAuthorization>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    issuer: String,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    jwks: Option<RawJwks>,
    #[serde(default)]
    provider: Option<RawProvider>,
    #[serde(default)]
    resource_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    jwt_validation_options: RawValidation,
    #[serde(default)]
    authorization_location: Option<RawLocation>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    claims_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    verified_token_cache: RawTokenCache,
    #[serde(default)]
    mcp_authorization: Option<RawMcpAuthorization>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTokenCache {
    #[serde(default)]
    capacity: Option<u64>,
    #[serde(default)]
    max_age_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawJwks {
    #[serde(default)]
    inline: Option<Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    cache_duration_seconds: Option<u64>,
    #[serde(default)]
    min_refresh_interval_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum RawProvider {
    Keycloak(ProviderOptions),
    Auth0(ProviderOptions),
    Oidc(ProviderOptions),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawValidation {
    #[serde(default)]
    required_claims: Option<Vec<String>>,
    #[serde(default)]
    clock_skew_seconds: Option<u64>,
    #[serde(default)]
    max_token_bytes: Option<usize>,
    #[serde(default)]
    max_rsa_key_bits: Option<u64>,
    #[serde(default)]
    verifier: Verifier,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimHeader {
    claim: String,
    header: String,
}

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let message = e.inner().to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string();
            ConfigError::new(e.path().to_string(), message)
        })?;
        de.end()
            .map_err(|_| ConfigError::new("", "trailing characters after the JSON object"))?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        if raw.issuer.trim().is_empty() {
            return Err(ConfigError::new("issuer", "must not be empty"));
        }
        let (provider_kind, provider_options) = match raw.provider {
            None => (None, ProviderOptions::default()),
            Some(RawProvider::Keycloak(o)) => (Some(Provider::Keycloak), o),
            Some(RawProvider::Auth0(o)) => (Some(Provider::Auth0), o),
            Some(RawProvider::Oidc(o)) => (Some(Provider::Oidc), o),
        };
        let provider = provider_kind;
        let metadata = ResourceMetadata::from_config(
            raw.resource_metadata.unwrap_or_default(),
            &raw.issuer,
            provider.is_some(),
        )?;
        warnings.extend(metadata.warning.clone());
        let audiences = match raw.audiences {
            Some(list) => {
                if let Some(i) = list.iter().position(|a| a.is_empty()) {
                    return Err(ConfigError::new(
                        format!("audiences[{i}]"),
                        "must not be empty",
                    ));
                }
                if list.is_empty() {
                    warnings.push(
                        "audiences: [] disables the audience check; tokens issued for any \
                         resource are accepted"
                            .to_string(),
                    );
                }
                list
            }
            None => match metadata.resource() {
                Some(resource) => vec![resource.to_string()],
                None => {
                    return Err(ConfigError::new(
                        "audiences",
                        "required when resourceMetadata.resource is not set \
                         (use [] to disable the audience check explicitly)",
                    ));
                }
            },
        };
        let validation = raw.jwt_validation_options;
        let required = validation
            .required_claims
            .unwrap_or_else(|| vec!["exp".to_string()]);
        if let Some(i) = required.iter().position(|c| c.is_empty()) {
            return Err(ConfigError::new(
                format!("jwtValidationOptions.requiredClaims[{i}]"),
                "must not be empty",
            ));
        }
        let clock_skew_secs = validation
            .clock_skew_seconds
            .unwrap_or(DEFAULT_CLOCK_SKEW_SECS);
        if clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(ConfigError::new(
                "jwtValidationOptions.clockSkewSeconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECS}"),
            ));
        }
        let max_token_bytes = validation
            .max_token_bytes
            .unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if !(64..=MAX_TOKEN_BYTES_LIMIT).contains(&max_token_bytes) {
            return Err(ConfigError::new(
                "jwtValidationOptions.maxTokenBytes",
                format!("must be between 64 and {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        }
        let key_policy = KeyPolicy {
            max_rsa_bits: match validation.max_rsa_key_bits {
                None => KeyPolicy::default().max_rsa_bits,
                Some(bits) => usize::try_from(bits)
                    .ok()
                    .filter(|bits| (MIN_RSA_BITS..=MAX_RSA_BITS_LIMIT).contains(bits))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "jwtValidationOptions.maxRsaKeyBits",
                            format!("must be between {MIN_RSA_BITS} and {MAX_RSA_BITS_LIMIT}"),
                        )
                    })?,
            },
            verifier: validation.verifier,
        };
        let keys = match raw.jwks {
            Some(jwks) => key_source(jwks, &raw.issuer, provider, key_policy)?,
            None => discovered_keys(&raw.issuer, provider, provider_options.cluster())?,
        };
        if raw.client_id.as_deref() == Some("") {
            return Err(ConfigError::new("clientId", "must not be empty"));
        }
        let provider = match provider {
            None => None,
            Some(kind) => Some(ProviderConfig::from_config(
                kind,
                provider_options,
                &raw.issuer,
                match &keys {
                    KeySource::Remote(remote) => Some(remote),
                    KeySource::Inline(_) => None,
                },
                metadata.resource(),
                raw.client_id,
                audiences.first().map(String::as_str),
            )?),
        };
        let location = TokenLocation::from_config(raw.authorization_location)?;
        let claim_headers = claim_headers(raw.claims_to_headers, &location)?;
        let mut spoofable_headers: Vec<HeaderName> = claim_headers
            .iter()
            .map(|m| HeaderName::from(m.header.as_str()))
            .collect();
        if provider
            .as_ref()
            .is_some_and(|p| p.gateway_prefix.is_some())
        {
            spoofable_headers.push(ROUTE_HEADER.into());
        }
        let token_cache = CachePolicy::from_config(
            raw.verified_token_cache.capacity,
            raw.verified_token_cache.max_age_seconds,
        )?;
        let mcp_authorization = match raw.mcp_authorization {
            Some(authz) => Some(Arc::new(McpAuthorization::from_raw(authz)?)),
            None => None,
        };
        if mcp_authorization.as_ref().is_some_and(|a| a.is_active()) {
            warnings.push(MCP_AUTHORIZATION_NEEDS_BUFFER.to_string());
        }
        if mcp_authorization
            .as_ref()
            .is_some_and(|a| a.is_active() && a.trust_server_header_validation)
        {
            warnings.push(TRUSTS_SERVER_HEADER_VALIDATION.to_string());
        }
        Ok(Self {
            mode: raw.mode,
            provider,
            keys,
            claims: ClaimRules {
                issuer: raw.issuer,
                audiences,
                required,
                clock_skew_secs,
            },
            location,
            max_token_bytes,
            key_policy,
            claim_headers,
            spoofable_headers,
            token_cache,
            metadata,
            warnings,
            mcp_authorization,
        })
    }
}

fn key_source(
    raw: RawJwks,
    issuer: &str,
    provider: Option<Provider>,
    policy: KeyPolicy,
) -> Result<KeySource, ConfigError> {
    if let Some(inline) = raw.inline {
        for (field, set) in [
            ("url", raw.url.is_some()),
            ("cluster", raw.cluster.is_some()),
            ("timeoutMs", raw.timeout_ms.is_some()),
            ("cacheDurationSeconds", raw.cache_duration_seconds.is_some()),
            (
                "minRefreshIntervalSeconds",
                raw.min_refresh_interval_seconds.is_some(),
            ),
        ] {
            if set {
                return Err(ConfigError::new(
                    format!("jwks.{field}"),
                    "not allowed together with jwks.inline",
                ));
            }
        }
        let bytes = match inline {
            Value::String(s) => s.into_bytes(),
            obj @ Value::Object(_) => obj.to_string().into_bytes(),
            _ => {
                return Err(ConfigError::new(
                    "jwks.inline",
                    "must be a JWKS object or a JSON string holding one",
                ));
            }
        };
        let set = KeySet::parse_with(&bytes, policy)
            .map_err(|e| ConfigError::new("jwks.inline", e.to_string()))?;
        return Ok(KeySource::Inline(Arc::new(set)));
    }
    let cluster = match raw.cluster {
        Some(c) if !c.is_empty() => c,
        Some(_) => return Err(ConfigError::new("jwks.cluster", "must not be empty")),
        None => {
            return Err(ConfigError::new(
                "jwks.cluster",
                "required: the Envoy cluster that reaches the JWKS host",
            ));
        }
    };
    let (url, url_path) = match raw.url {
        Some(url) => (url, "jwks.url"),
        None => (derived_jwks_url(issuer, provider), "issuer"),
    };
    let url = HttpUrl::parse(&url).map_err(|m| ConfigError::new(url_path, m))?;
    Ok(KeySource::Remote(RemoteJwks::from_config(
        JwksLocation::Url(url),
        cluster,
        raw.timeout_ms,
        raw.cache_duration_seconds,
        raw.min_refresh_interval_seconds,
    )?))
}

/// `jwks` omitted: the keys are found through the provider's own metadata (`jwks_uri`),
/// fetched through the provider's cluster.
fn discovered_keys(
    issuer: &str,
    provider: Option<Provider>,
    cluster: Option<&str>,
) -> Result<KeySource, ConfigError> {
    let Some(kind) = provider else {
        return Err(ConfigError::new(
            "jwks",
            "required: inline keys ({\"inline\": {...}}), the Envoy cluster to fetch them \
             through ({\"cluster\": \"...\"}, with an optional url), or a provider with a \
             cluster to discover them from",
        ));
    };
    let field = format!("provider.{}.cluster", kind.name());
    let cluster = match cluster {
        Some("") => return Err(ConfigError::new(field, "must not be empty")),
        Some(cluster) => cluster.to_string(),
        None => {
            return Err(ConfigError::new(
                field,
                "required when jwks is omitted: the Envoy cluster the keys are discovered through",
            ));
        }
    };
    let issuer = HttpUrl::parse(issuer).map_err(|m| {
        ConfigError::new(
            "issuer",
            format!("{m} (discovering the JWKS needs a URL issuer)"),
        )
    })?;
    let metadata = HttpUrl {
        path_and_query: kind.metadata_path(&issuer),
        ..issuer
    };
    Ok(KeySource::Remote(RemoteJwks::from_config(
        JwksLocation::Discovered { metadata },
        cluster,
        None,
        None,
        None,
    )?))
}

/// The JWKS location when only the cluster is given: Keycloak's cert path, else the
/// conventional `/.well-known/jwks.json` under the issuer.
fn derived_jwks_url(issuer: &str, provider: Option<Provider>) -> String {
    let base = issuer.trim_end_matches('/');
    match provider {
        Some(Provider::Keycloak) => format!("{base}{KEYCLOAK_CERTS_PATH}"),
        _ => format!("{base}/.well-known/jwks.json"),
    }
}

fn claim_headers(
    raw: Vec<RawClaimHeader>,
    location: &TokenLocation,
) -> Result<Vec<ClaimHeader>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.claim.is_empty() {
                return Err(ConfigError::new(
                    format!("claimsToHeaders[{i}].claim"),
                    "must not be empty",
                ));
            }
            let path = format!("claimsToHeaders[{i}].header");
            check_header_name(&entry.header, &path)?;
            let header = entry.header.to_ascii_lowercase();
            let reserved = ["authorization", "cookie", "host", "content-length"];
            let is_credential_header =
                matches!(location, TokenLocation::Header { name, .. } if *name == *header);
            if reserved.contains(&header.as_str()) || is_credential_header {
                return Err(ConfigError::new(path, "must not name a reserved header"));
            }
            Ok(ClaimHeader {
                claim: entry.claim,
                header,
            })
        })
        .collect()
}

fn check_header_name(name: &str, path: &str) -> Result<(), ConfigError> {
    if !is_http_token(name) {
        return Err(ConfigError::new(path, "not a valid HTTP header name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
