//! The plugin config as a whole: the single-server shape, or `servers` (each one server's
//! settings plus `name` and `match`) with what the servers share. Each `servers[i]` is parsed
//! by the single-server code, so its errors are the same ones under `servers[i].`.

use serde_json::Value;

use super::{Config, RawConfig};
use crate::core::error::ConfigError;
use crate::core::token_cache::CachePolicy;
use crate::core::url::is_plain_path;

/// What a request that matches no server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// 404 with a JSON error body; the upstream sees nothing.
    Reject,
    /// Forwarded untouched, credential included: the request is not the filter's.
    Pass,
}

/// How a request's server is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// By `match` (hosts and path prefix) and the paths each server owns.
    Match,
    /// By name, from Envoy route metadata `filter_metadata.mcp_authn.server`.
    RouteMetadata,
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
        // A document that is not JSON fails below, with the single-server shape's message.
        let top = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(top)) if top.contains_key("servers") => top,
            _ => return Self::single(bytes),
        };
        // The few plugin-level members are read by hand: a derived parser for them would
        // instantiate serde's machinery again for `Value` (about 30 KB of Wasm).
        let mut plugin = Self {
            servers: Vec::new(),
            unmatched: Unmatched::Reject,
            selection: Selection::Match,
            token_cache: CachePolicy::from_config(None, None)?,
            single_shape: false,
        };
        let mut listed = Vec::new();
        for (key, value) in top {
            match (key.as_str(), value) {
                ("servers", Value::Array(list)) => listed = list,
                ("unmatched", Value::String(v)) if v == "reject" => {}
                ("unmatched", Value::String(v)) if v == "pass" => {
                    plugin.unmatched = Unmatched::Pass
                }
                ("serverSelection", Value::String(v)) if v == "match" => {}
                ("serverSelection", Value::String(v)) if v == "routeMetadata" => {
                    plugin.selection = Selection::RouteMetadata;
                }
                ("verifiedTokenCache", Value::Object(cache)) => {
                    plugin.token_cache = token_cache(&cache)?;
                }
                (key, _) => {
                    let expected = match key {
                        "servers" => "must be an array of servers",
                        "unmatched" => "must be \"reject\" or \"pass\"",
                        "serverSelection" => "must be \"match\" or \"routeMetadata\"",
                        "verifiedTokenCache" => "must be an object",
                        _ => {
                            "unknown field (beside servers: unmatched, serverSelection, \
                              verifiedTokenCache; a server's settings go inside servers[])"
                        }
                    };
                    return Err(ConfigError::new(key, expected));
                }
            }
        }
        if listed.is_empty() {
            return Err(ConfigError::new("servers", "must list at least one server"));
        }
        for (i, value) in listed.into_iter().enumerate() {
            let at = format!("servers[{i}].");
            let server = server(value, plugin.token_cache).map_err(|e| e.under(&at))?;
            if let Some(k) = plugin.servers.iter().position(|s| s.name == server.name) {
                return Err(ConfigError::new(
                    format!("{at}name"),
                    format!("{:?} is also servers[{k}]'s name", server.name),
                ));
            }
            plugin.servers.push(server);
        }
        Ok(plugin)
    }

    /// The single-server shape: one server that takes every request.
    fn single(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_json(bytes)?;
        raw.refuse_server_members()?;
        let issuers = Config::validate_server(raw, true)?;
        let token_cache = issuers
            .first()
            .map(|c| c.token_cache)
            .ok_or_else(|| ConfigError::new("issuer", "required"))?;
        Ok(Self {
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
        })
    }
}

/// `verifiedTokenCache` beside `servers`.
fn token_cache(cache: &serde_json::Map<String, Value>) -> Result<CachePolicy, ConfigError> {
    let mut capacity = None;
    let mut max_age = None;
    for (key, value) in cache {
        let slot = match key.as_str() {
            "capacity" => &mut capacity,
            "maxAgeSeconds" => &mut max_age,
            _ => {
                return Err(ConfigError::new(
                    format!("verifiedTokenCache.{key}"),
                    "unknown field (capacity, maxAgeSeconds)",
                ));
            }
        };
        *slot = Some(value.as_u64().ok_or_else(|| {
            ConfigError::new(
                format!("verifiedTokenCache.{key}"),
                "must be a whole number",
            )
        })?);
    }
    CachePolicy::from_config(capacity, max_age)
}

/// One `servers[i]` (errors relative to it).
fn server(value: Value, token_cache: CachePolicy) -> Result<ServerConfig, ConfigError> {
    // Parsed like the single-server shape (from text, not from the `Value`: a second
    // deserializer would instantiate every setting's parser again, about 150 KB of Wasm).
    let raw = RawConfig::parse(value)?;
    let name = match &raw.name {
        None | Some(Value::Null) => return Err(ConfigError::new("name", "required in servers[]")),
        Some(Value::String(name)) if is_server_name(name) => name.clone(),
        Some(_) => {
            return Err(ConfigError::new(
                "name",
                "must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
            ));
        }
    };
    let (mut hosts, mut path_prefix) = (Vec::new(), "/".to_string());
    match &raw.matcher {
        None => {}
        Some(Value::Object(members)) => {
            for (key, value) in members {
                match key.as_str() {
                    "hosts" => hosts = host_list(value)?,
                    "pathPrefix" => path_prefix = prefix(value)?,
                    _ => {
                        return Err(ConfigError::new(
                            format!("match.{key}"),
                            "unknown field (hosts, pathPrefix)",
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(ConfigError::new("match", "must be an object")),
    }
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

fn host_list(value: &Value) -> Result<Vec<String>, ConfigError> {
    let Value::Array(list) = value else {
        return Err(ConfigError::new("match.hosts", "must be an array of hosts"));
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
            let host = host.as_str().unwrap_or_default();
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

fn prefix(value: &Value) -> Result<String, ConfigError> {
    let prefix = value.as_str().unwrap_or_default();
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
