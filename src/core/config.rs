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
    /// Shared by the server's issuers.
    pub metadata: Arc<ResourceMetadata>,
    /// Accepted but risky settings, for the host to log at load.
    pub warnings: Vec<String>,
    /// `mcpAuthorization`: tool-level rules, scope requirements and list filtering.
    pub mcp_authorization: Option<Arc<McpAuthorization>>,
}

/// One protected resource as written: the whole single-server config, or one `servers[i]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    /// Taken out before the typed parse and parsed entry by entry (see [`RawConfig::parse`]).
    #[serde(skip)]
    issuers: Option<Vec<Value>>,
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
    /// Whether `verifiedTokenCache` was written (in `servers[i]` it belongs beside `servers`).
    #[serde(skip)]
    has_token_cache: bool,
    #[serde(default)]
    mcp_authorization: Option<RawMcpAuthorization>,
    /// `name` and `match`, only in `servers[i]`: taken out with `issuers` and read by
    /// `plugin.rs`.
    #[serde(skip)]
    pub(crate) name: Option<Value>,
    #[serde(skip)]
    pub(crate) matcher: Option<Value>,
}

impl RawConfig {
    /// The single-server shape, from the plugin configuration's bytes.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Self::parse(value),
            // Not JSON: the typed parse says why, naming the place.
            Err(_) => parse_json(bytes),
        }
    }

    /// One server's settings. `issuers`, `name` and `match` are taken out first and kept as
    /// values (each issuer parsed on its own, [`RawIssuer::parse`]): typed nested members
    /// would instantiate the parser of every setting again (about 15 KB of Wasm).
    pub(crate) fn parse(value: Value) -> Result<Self, ConfigError> {
        let Value::Object(members) = value else {
            return Err(ConfigError::new("", "invalid type: expected a JSON object"));
        };
        let mut rest = Map::new();
        let (mut issuers, mut name, mut matcher) = (None, None, None);
        for (key, value) in members {
            match key.as_str() {
                "issuers" => issuers = Some(value),
                "name" => name = Some(value),
                "match" => matcher = Some(value),
                _ => {
                    rest.insert(key, value);
                }
            }
        }
        let has_token_cache = rest.contains_key("verifiedTokenCache");
        let mut raw: Self = parse_json(Value::Object(rest).to_string().as_bytes())?;
        raw.has_token_cache = has_token_cache;
        raw.issuers = match issuers {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(_) => return Err(ConfigError::new("issuers", "must be an array of issuers")),
        };
        raw.name = name;
        raw.matcher = matcher;
        Ok(raw)
    }

    /// `name` or `match` outside `servers[]`.
    pub(crate) fn refuse_server_members(&self) -> Result<(), ConfigError> {
        match (&self.name, &self.matcher) {
            (None, None) => Ok(()),
            (Some(_), _) => Err(ConfigError::new("name", "only allowed inside servers[]")),
            (None, Some(_)) => Err(ConfigError::new("match", "only allowed inside servers[]")),
        }
    }
}

/// `issuers[j]`: one trusted issuer with its own keys, provider and claim rules
/// (`jwtValidationOptions` replaces the server's as a whole for this issuer's tokens).
struct RawIssuer {
    issuer: String,
    jwks: Option<RawJwks>,
    provider: Option<RawProvider>,
    jwt_validation_options: Option<RawValidation>,
}

/// The members an `issuers[j]` entry takes.
const ISSUER_FIELDS: [&str; 4] = ["issuer", "jwks", "provider", "jwtValidationOptions"];

impl RawIssuer {
    /// Parses one entry with `RawConfig`'s parser (a parser of its own would add about 15 KB
    /// of Wasm), refusing the members only a server takes.
    fn parse(entry: &Value) -> Result<Self, ConfigError> {
        if let Some(key) = entry
            .as_object()
            .and_then(|map| map.keys().find(|k| !ISSUER_FIELDS.contains(&k.as_str())))
        {
            return Err(ConfigError::new(
                key.as_str(),
                "unknown field (an issuer takes issuer, jwks, provider, jwtValidationOptions)",
            ));
        }
        let mut raw: RawConfig = parse_json(entry.to_string().as_bytes())?;
        let own_rules = entry.get("jwtValidationOptions").is_some();
        // Taken, not moved out: a partial move would need drop code of its own.
        Ok(Self {
            issuer: raw
                .issuer
                .take()
                .ok_or_else(|| ConfigError::new("issuer", "required"))?,
            jwks: raw.jwks.take(),
            provider: raw.provider.take(),
            jwt_validation_options: own_rules
                .then(|| std::mem::take(&mut raw.jwt_validation_options)),
        })
    }
}

/// The claim and size rules `jwtValidationOptions` sets, validated.
#[derive(Debug, Clone)]
struct ClaimSettings {
    required: Vec<String>,
    clock_skew_secs: u64,
    max_token_bytes: usize,
    key_policy: KeyPolicy,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawTokenCache {
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
    /// Parses and validates a single-server, single-issuer configuration (the checker, the
    /// tests and the examples; the filter loads any shape with `servers::Plugin::from_json`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_json(bytes)?;
        raw.refuse_server_members()?;
        let mut issuers = Self::validate_server(raw, true)?.into_iter();
        match (issuers.next(), issuers.next()) {
            (Some(config), None) => Ok(config),
            _ => Err(ConfigError::new(
                "issuers",
                "several issuers: load the plugin config (servers::Plugin::from_json)",
            )),
        }
    }

    /// Validates one server: one `Config` per trusted issuer, in the configured order, each
    /// with that issuer's keys, provider and claim rules and the server's everything else.
    /// `top_level`: `verifiedTokenCache` belongs here (in `servers[i]` it is shared, above).
    pub(crate) fn validate_server(
        raw: RawConfig,
        top_level: bool,
    ) -> Result<Vec<Self>, ConfigError> {
        let mut warnings = Vec::new();
        let (issuers, indexed) = match (raw.issuer, raw.issuers) {
            (Some(issuer), None) => (
                vec![RawIssuer {
                    issuer,
                    jwks: raw.jwks,
                    provider: raw.provider,
                    jwt_validation_options: None,
                }],
                false,
            ),
            (None, Some(list)) => {
                for (field, set) in [
                    ("jwks", raw.jwks.is_some()),
                    ("provider", raw.provider.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::new(
                            field,
                            "set it per issuer inside issuers[] (not allowed together with issuers)",
                        ));
                    }
                }
                if list.is_empty() {
                    return Err(ConfigError::new("issuers", "must list at least one issuer"));
                }
                let mut parsed = Vec::with_capacity(list.len());
                for (j, entry) in list.iter().enumerate() {
                    parsed.push(
                        RawIssuer::parse(entry).map_err(|e| e.under(&format!("issuers[{j}].")))?,
                    );
                }
                (parsed, true)
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "issuers",
                    "not allowed together with issuer",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "",
                    "missing field `issuer` (or `issuers`)",
                ));
            }
        };
        let at = |j: usize| {
            if indexed {
                format!("issuers[{j}].")
            } else {
                String::new()
            }
        };
        let mut kinds = Vec::with_capacity(issuers.len());
        for (j, entry) in issuers.iter().enumerate() {
            if entry.issuer.trim().is_empty() {
                return Err(ConfigError::new("issuer", "must not be empty").under(&at(j)));
            }
            if let Some(k) = issuers
                .iter()
                .take(j)
                .position(|e| e.issuer == entry.issuer)
            {
                return Err(ConfigError::new(
                    format!("{}issuer", at(j)),
                    format!("listed twice (issuers[{k}] is the same issuer)"),
                ));
            }
            let kind = entry.provider.as_ref().map(RawProvider::kind);
            if let (Some(_), Some(k)) = (kind, kinds.iter().position(Option::is_some)) {
                return Err(ConfigError::new(
                    format!("{}provider", at(j)),
                    format!(
                        "only one issuer per server can be fronted (issuers[{k}] is): the \
                         gateway's issuer identifier is the server's resource"
                    ),
                ));
            }
            kinds.push(kind);
        }
        let listed: Vec<(&str, bool)> = issuers
            .iter()
            .zip(&kinds)
            .map(|(entry, kind)| (entry.issuer.as_str(), kind.is_some()))
            .collect();
        let metadata = Arc::new(ResourceMetadata::listing(
            raw.resource_metadata.unwrap_or_default(),
            &listed,
        )?);
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
        let server_rules = ClaimSettings::from_raw(raw.jwt_validation_options)?;
        if raw.client_id.as_deref() == Some("") {
            return Err(ConfigError::new("clientId", "must not be empty"));
        }
        let location = TokenLocation::from_config(raw.authorization_location)?;
        let claim_headers = claim_headers(raw.claims_to_headers, &location)?;
        if raw.has_token_cache && !top_level {
            return Err(ConfigError::new(
                "verifiedTokenCache",
                "set it at the top level, beside servers (one cache, keyed per server)",
            ));
        }
        let cache = raw.verified_token_cache;
        let token_cache = CachePolicy::from_config(cache.capacity, cache.max_age_seconds)?;
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
        let mut configs = Vec::with_capacity(issuers.len());
        for (j, entry) in issuers.into_iter().enumerate() {
            let issuer_config = IssuerConfig {
                rules: match entry.jwt_validation_options {
                    Some(own) => ClaimSettings::from_raw(own).map_err(|e| e.under(&at(j)))?,
                    None => server_rules.clone(),
                },
                issuer: entry.issuer,
                jwks: entry.jwks,
                provider: entry.provider,
            };
            let server = ServerParts {
                mode: raw.mode,
                metadata: &metadata,
                audiences: &audiences,
                client_id: raw.client_id.clone(),
                location: &location,
                claim_headers: &claim_headers,
                token_cache,
                mcp_authorization: mcp_authorization.clone(),
                warnings: &warnings,
            };
            configs.push(Self::for_issuer(issuer_config, server).map_err(|e| e.under(&at(j)))?);
        }
        Ok(configs)
    }

    /// One issuer's `Config`: its keys, provider and rules, and the server's shared settings.
    fn for_issuer(entry: IssuerConfig, server: ServerParts<'_>) -> Result<Self, ConfigError> {
        let rules = entry.rules;
        let (provider, provider_options) = match entry.provider {
            None => (None, ProviderOptions::default()),
            Some(raw) => (Some(raw.kind()), raw.options()),
        };
        let keys = match entry.jwks {
            Some(jwks) => key_source(jwks, &entry.issuer, provider, rules.key_policy)?,
            None => discovered_keys(&entry.issuer, provider, provider_options.cluster())?,
        };
        let provider = match provider {
            None => None,
            Some(kind) => Some(ProviderConfig::from_config(
                kind,
                provider_options,
                &entry.issuer,
                match &keys {
                    KeySource::Remote(remote) => Some(remote),
                    KeySource::Inline(_) => None,
                },
                server.metadata.resource(),
                server.client_id,
                server.audiences.first().map(String::as_str),
            )?),
        };
        let mut spoofable_headers: Vec<HeaderName> = server
            .claim_headers
            .iter()
            .map(|m| HeaderName::from(m.header.as_str()))
            .collect();
        if provider
            .as_ref()
            .is_some_and(|p| p.gateway_prefix.is_some())
        {
            spoofable_headers.push(ROUTE_HEADER.into());
        }
        Ok(Self {
            mode: server.mode,
            provider,
            keys,
            claims: ClaimRules {
                issuer: entry.issuer,
                audiences: server.audiences.to_vec(),
                required: rules.required,
                clock_skew_secs: rules.clock_skew_secs,
            },
            location: server.location.clone(),
            max_token_bytes: rules.max_token_bytes,
            key_policy: rules.key_policy,
            claim_headers: server.claim_headers.to_vec(),
            spoofable_headers,
            token_cache: server.token_cache,
            metadata: Arc::clone(server.metadata),
            warnings: server.warnings.to_vec(),
            mcp_authorization: server.mcp_authorization,
        })
    }
}

/// One issuer's own settings, before validation.
struct IssuerConfig {
    issuer: String,
    jwks: Option<RawJwks>,
    provider: Option<RawProvider>,
    rules: ClaimSettings,
}

/// What every issuer of one server shares, validated once.
struct ServerParts<'a> {
    mode: Mode,
    metadata: &'a Arc<ResourceMetadata>,
    audiences: &'a [String],
    client_id: Option<String>,
    location: &'a TokenLocation,
    claim_headers: &'a [ClaimHeader],
    token_cache: CachePolicy,
    mcp_authorization: Option<Arc<McpAuthorization>>,
    warnings: &'a [String],
}

impl RawProvider {
    fn kind(&self) -> Provider {
        match self {
            Self::Keycloak(_) => Provider::Keycloak,
            Self::Auth0(_) => Provider::Auth0,
            Self::Oidc(_) => Provider::Oidc,
        }
    }

    fn options(self) -> ProviderOptions {
        match self {
            Self::Keycloak(o) | Self::Auth0(o) | Self::Oidc(o) => o,
        }
    }
}

impl ClaimSettings {
    /// Validates `jwtValidationOptions` (field paths relative to the object that holds it).
    fn from_raw(validation: RawValidation) -> Result<Self, ConfigError> {
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
        Ok(Self {
            required,
            clock_skew_secs,
            max_token_bytes,
            key_policy,
        })
    }
}

/// Strict JSON into `T`: errors name the field path, trailing characters are refused.
/// Not inlined: its callers would each carry a copy of the whole parser.
#[inline(never)]
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw = T::deserialize(&mut de).map_err(|e| parse_error(bytes, &e))?;
    de.end()
        .map_err(|_| ConfigError::new("", "trailing characters after the JSON object"))?;
    Ok(raw)
}

fn parse_error(bytes: &[u8], e: &serde_json::Error) -> ConfigError {
    let message = e.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string();
    // An externally tagged enum's variant is written as a key, but it is no field.
    let key_is_field = !message.starts_with("unknown variant");
    let path = json_path::at_line_column(bytes, e.line(), e.column(), key_is_field);
    ConfigError::new(path, message)
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

mod json_path;
pub mod plugin;

#[cfg(test)]
mod tests;
