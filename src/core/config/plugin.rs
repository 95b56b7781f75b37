//! The plugin config as a whole: the single-server shape, or `servers` (each one server's
//! settings plus `name` and `match`) with what the servers share. Each `servers[i]` is parsed
//! by the single-server code, so its errors are the same ones under `servers[i].`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Config, RawConfig, RawTokenCache, parse_json};
use crate::core::error::ConfigError;
use crate::core::token_cache::CachePolicy;
use crate::core::url::is_plain_path;

/// What a request that matches no server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Unmatched {
    /// 404 with a JSON error body; the upstream sees nothing.
    #[default]
    Reject,
    /// Forwarded untouched, credential included: the request is not the filter's.
    Pass,
}

/// How a request's server is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Selection {
    /// By `match` (hosts and path prefix) and the paths each server owns.
    #[default]
    Match,
    /// By name, from Envoy route metadata `filter_metadata.mcp_authn.server`.
    RouteMetadata,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugin {
    servers: Vec<Value>,
    #[serde(default)]
    unmatched: Unmatched,
    #[serde(default)]
    verified_token_cache: Option<RawTokenCache>,
    #[serde(default)]
    server_selection: Selection,
}

/// The validated plugin config, before the selection index is built (`core::servers`).
#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub servers: Vec<ServerConfig>,
    pub unmatched: Unmatched,
    pub selection: Selection,
    pub token_cache: CachePolicy,
    /// Written in the single-server shape: one server that matches everything.
    pub single_shape: bool,
}

/// One server: its name, what it matches, and one `Config` per trusted issuer, in order.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    /// Lower-case `:authority` values; an entry without a port matches any port. Empty: any.
    pub hosts: Vec<String>,
    /// A plain path without a trailing slash, matched on whole segments; `/`: every path.
    pub path_prefix: String,
    pub issuers: Vec<Config>,
}

impl PluginConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let top: Map<String, Value> = parse_json(bytes)?;
        if !top.contains_key("servers") {
            let raw: RawConfig = parse_json(bytes)?;
            if raw.name.is_some() || raw.matcher.is_some() {
                return Err(ConfigError::new(
                    if raw.name.is_some() { "name" } else { "match" },
                    "only allowed inside servers[]",
                ));
            }
            let issuers = Config::validate_server(raw, true)?;
            let token_cache = issuers
                .first()
                .map(|c| c.token_cache)
                .ok_or_else(|| ConfigError::new("issuer", "required"))?;
            return Ok(Self {
                servers: vec![ServerConfig {
                    name: "default".into(),
                    hosts: Vec::new(),
                    path_prefix: "/".into(),
                    issuers,
                }],
                unmatched: Unmatched::Reject,
                selection: Selection::Match,
                token_cache,
                single_shape: true,
            });
        }
        let raw: RawPlugin = parse_json(bytes)?;
        if raw.servers.is_empty() {
            return Err(ConfigError::new("servers", "must list at least one server"));
        }
        let cache = raw.verified_token_cache.unwrap_or_default();
        let token_cache = CachePolicy::from_config(cache.capacity, cache.max_age_seconds)?;
        let mut servers: Vec<ServerConfig> = Vec::with_capacity(raw.servers.len());
        for (i, value) in raw.servers.into_iter().enumerate() {
            let at = format!("servers[{i}].");
            let server = server(value, token_cache).map_err(|e| e.under(&at))?;
            if let Some(k) = servers.iter().position(|s| s.name == server.name) {
                return Err(ConfigError::new(
                    format!("{at}name"),
                    format!("{:?} is also servers[{k}]'s name", server.name),
                ));
            }
            servers.push(server);
        }
        Ok(Self {
            servers,
            unmatched: raw.unmatched,
            selection: raw.server_selection,
            token_cache,
            single_shape: false,
        })
    }
}

/// One `servers[i]` (errors relative to it).
fn server(value: Value, token_cache: CachePolicy) -> Result<ServerConfig, ConfigError> {
    let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let message = e.inner().to_string();
        ConfigError::new(e.path().to_string(), message)
    })?;
    let name = match &raw.name {
        None => return Err(ConfigError::new("name", "required in servers[]")),
        Some(name) if is_server_name(name) => name.clone(),
        Some(_) => {
            return Err(ConfigError::new(
                "name",
                "must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
            ));
        }
    };
    let (hosts, path_prefix) = match &raw.matcher {
        None => (Vec::new(), "/".to_string()),
        Some(m) => (
            hosts(m.hosts.as_deref())?,
            path_prefix(m.path_prefix.as_deref())?,
        ),
    };
    let mut issuers = Config::validate_server(raw, false)?;
    for config in &mut issuers {
        config.token_cache = token_cache;
    }
    Ok(ServerConfig {
        name,
        hosts,
        path_prefix,
        issuers,
    })
}

fn is_server_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn hosts(list: Option<&[String]>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Err(ConfigError::new(
            "match.hosts",
            "must list at least one host (omit it to match any host)",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, host)| {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
                && port_of(host).is_none_or(|port| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                });
            if valid {
                Ok(host.to_ascii_lowercase())
            } else {
                Err(ConfigError::new(
                    format!("match.hosts[{i}]"),
                    "must be a host name or address, with an optional :port",
                ))
            }
        })
        .collect()
}

fn path_prefix(prefix: Option<&str>) -> Result<String, ConfigError> {
    let Some(prefix) = prefix else {
        return Ok("/".into());
    };
    if !prefix.starts_with('/') || prefix.contains(['?', '#']) || !is_plain_path(prefix) {
        return Err(ConfigError::new(
            "match.pathPrefix",
            "must be a plain path starting with / (no query, dot segments, // or escapes)",
        ));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

/// The port of an `:authority` value (`host:port`, `[v6]:port`), if it names one.
pub fn port_of(authority: &str) -> Option<&str> {
    let after_host = match authority.rfind(']') {
        Some(end) => authority.get(end.saturating_add(1)..)?,
        None => authority,
    };
    after_host.rsplit_once(':').map(|(_, port)| port)
}
