//! Many protected resources in one filter: which server (and which of its issuers) a request
//! is for, chosen before `decision::decide`. Every path a server owns (its resource metadata,
//! a fronted provider's metadata, registration, key set and passage) is computed at load, and
//! a clash between two servers, like an overlap of their `match`, fails the load.
//!
//! A config with one server that matches everything (the single-server shape) is answered
//! without matching; with one issuer, [`Plugin::select`] does not look at the request at all.

use super::config::Config;
use super::config::plugin::{PluginConfig, Selection, ServerConfig, Unmatched, port_of};
use super::decision::{self, Decision, Final, KeyState, Keys, Outcome, Paused, Route, Unselected};
use super::error::ConfigError;
use super::jwks::KeySet;
use super::metadata::PRM_PREFIX;
use super::provider::{KEYCLOAK_CERTS_PATH, Provider, REGISTRATION_SUFFIX};
use super::reply::{HeaderEdits, LocalReply, error_body};
use super::request::Request;
use super::token;
use super::token_cache::{CachePolicy, TokenCache};
use super::url::is_plain_path;
use super::verify;

/// Authorization-server discovery prefixes (RFC 8414, OpenID), as `decision::route` has them.
const AS_PREFIXES: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// Which server, and which of its issuers, a request is decided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub server: usize,
    pub issuer: usize,
}

/// A request answered while choosing its server: no server takes it, or its server refuses
/// its token's issuer before any key work.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The server (and issuer) whose settings made the answer, if any: a request it passes
    /// (permissive mode) gets its `mcpAuthorization` like any other it passes.
    pub target: Option<Target>,
    pub decision: Final,
}

impl Answered {
    /// Boxed: the answer paths are the rare ones, and the chosen target stays small.
    fn unchosen(decision: Final) -> Box<Self> {
        Box::new(Self {
            target: None,
            decision,
        })
    }
}

/// The loaded plugin: the servers, how requests find them, and what they share.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub servers: Vec<Server>,
    pub unmatched: Unmatched,
    pub selection: Selection,
    /// `verifiedTokenCache`: one cache per server, each with this policy.
    pub token_cache: CachePolicy,
    /// Accepted but risky settings, for the host to log at load.
    pub warnings: Vec<String>,
    /// One server, matching everything: no server to choose, and no other server a path
    /// could be normalised into. With one issuer, no selection work at all per request.
    only_server: bool,
    owned: Vec<Owned>,
}

/// One server, ready for selection.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    hosts: Vec<String>,
    prefix: String,
    /// One `Config` per trusted issuer, in the configured order.
    pub issuers: Vec<Config>,
    /// The issuer the gateway fronts, if any (at most one per server).
    fronted: Option<usize>,
}

/// A path one server answers whatever its `match` says.
#[derive(Debug, Clone)]
struct Owned {
    path: String,
    /// `true`: the path and everything strictly under `path/`; `false`: the path alone.
    subtree: bool,
    target: Target,
    /// The config field that makes the server own it (named when two servers clash).
    field: String,
    /// Keycloak's theme files, the same for every realm: two owners do not clash.
    shared: bool,
}

impl Plugin {
    /// Parses, validates and indexes the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::new(PluginConfig::from_json(bytes)?)
    }

    pub fn new(config: PluginConfig) -> Result<Self, ConfigError> {
        let single_shape = config.single_shape;
        let at = |i: usize| {
            if single_shape {
                String::new()
            } else {
                format!("servers[{i}].")
            }
        };
        let mut warnings = Vec::new();
        let mut servers = Vec::with_capacity(config.servers.len());
        let mut owned = Vec::new();
        for (i, server) in config.servers.into_iter().enumerate() {
            let server = Server::new(server);
            if let Some(first) = server.issuers.first() {
                warnings.extend(first.warnings.iter().map(|w| format!("{}{w}", at(i))));
            }
            if config.selection == Selection::Match {
                if let Some((k, other)) = servers
                    .iter()
                    .enumerate()
                    .find(|(_, s): &(usize, &Server)| s.overlaps(&server))
                {
                    return Err(ConfigError::new(
                        format!("{}match", at(i)),
                        format!(
                            "servers[{i}] ({:?}) and servers[{k}] ({:?}) can both match one \
                             request: give them different hosts or path prefixes that do not \
                             contain one another",
                            server.name, other.name
                        ),
                    ));
                }
                for path in server.owned_paths(i, &at(i)) {
                    if let Some(other) = owned.iter().find(|o: &&Owned| {
                        o.target.server != i && o.clashes(&path, &servers, &server)
                    }) {
                        return Err(ConfigError::new(
                            path.field.clone(),
                            format!(
                                "{} is also served for servers[{}] ({}): two servers cannot \
                                 own one path",
                                path.path, other.target.server, other.field
                            ),
                        ));
                    }
                    owned.push(path);
                }
            }
            servers.push(server);
        }
        if let Some(warning) = cache_bound_warning(&servers, config.token_cache) {
            warnings.push(warning);
        }
        let only_server = servers.len() == 1
            && servers
                .iter()
                .all(|s| s.hosts.is_empty() && s.prefix == "/")
            && config.selection == Selection::Match;
        Ok(Self {
            servers,
            unmatched: config.unmatched,
            selection: config.selection,
            token_cache: config.token_cache,
            warnings,
            only_server,
            owned,
        })
    }

    /// The config a target is decided with.
    pub fn config(&self, target: Target) -> Option<&Config> {
        self.servers.get(target.server)?.issuers.get(target.issuer)
    }

    /// Every issuer's config with its target, for the host to set up key sources.
    pub fn targets(&self) -> impl Iterator<Item = (Target, &Config)> {
        self.servers.iter().enumerate().flat_map(|(server, s)| {
            s.issuers
                .iter()
                .enumerate()
                .map(move |(issuer, config)| (Target { server, issuer }, config))
        })
    }

    /// Chooses the server and issuer for a request, or answers it: no server (`unmatched`),
    /// a path that is not plain, an unknown route server, a token from an unknown issuer.
    /// `route_server`: the name from route metadata, read only with `serverSelection:
    /// routeMetadata`.
    pub fn select(
        &self,
        request: &Request,
        route_server: Option<&str>,
    ) -> Result<Target, Box<Answered>> {
        let (server, issuer) = match self.selection {
            Selection::Match if self.only_server => match self.servers.first() {
                Some(only) if only.issuers.len() > 1 => (0, None),
                _ => (0, Some(0)),
            },
            Selection::RouteMetadata => {
                let found =
                    route_server.and_then(|name| self.servers.iter().position(|s| s.name == name));
                match found {
                    Some(server) => (server, None),
                    None => {
                        return Err(Answered::unchosen(unselected(Unselected::NoRouteServer)));
                    }
                }
            }
            Selection::Match => self.match_request(request).map_err(Answered::unchosen)?,
        };
        let Some(chosen) = self.servers.get(server) else {
            return Err(Answered::unchosen(unselected(Unselected::NoMatch)));
        };
        let issuer = match issuer {
            Some(issuer) => issuer,
            None => chosen.issuer_for(request).map_err(|issuer| {
                let target = Target { server, issuer };
                let decision = match self.config(target) {
                    Some(config) => decision::unknown_issuer(config, request),
                    None => unselected(Unselected::NoMatch),
                };
                Box::new(Answered {
                    target: Some(target),
                    decision,
                })
            })?,
        };
        Ok(Target { server, issuer })
    }

    /// Selection by `match` and owned paths: `(server, issuer when the path decides it)`.
    fn match_request(&self, request: &Request) -> Result<(usize, Option<usize>), Final> {
        let path = request.path_only();
        if !is_plain_path(path) {
            return Err(unselected(Unselected::NotPlain));
        }
        let authority = request.authority.as_str();
        if let Some(owner) = self.owned.iter().find(|o| {
            o.covers(path)
                && self
                    .servers
                    .get(o.target.server)
                    .is_some_and(|s| s.matches_host(authority))
        }) {
            return Ok((owner.target.server, Some(owner.target.issuer)));
        }
        // A well-known document no server owns (a resource taken from the request) belongs to
        // the server whose `match` takes the path it is about.
        let about = [PRM_PREFIX]
            .into_iter()
            .chain(AS_PREFIXES)
            .find_map(|prefix| {
                path.strip_prefix(prefix)
                    .filter(|rest| rest.starts_with('/'))
            })
            .unwrap_or(path);
        match self
            .servers
            .iter()
            .position(|s| s.matches(authority, about))
        {
            Some(server) => Ok((server, None)),
            None => Err(self.unmatched_answer()),
        }
    }

    /// Decides a request for its target with that issuer's key state and that server's
    /// verified-token cache.
    pub fn decide(
        &self,
        target: Target,
        request: &Request,
        state: KeyState<'_>,
        caches: &mut TokenCaches,
        now: u64,
    ) -> Decision {
        match (self.config(target), caches.0.get_mut(target.server)) {
            (Some(config), Some(cache)) => decision::decide(
                config,
                request,
                Keys {
                    state,
                    cache: Some(cache),
                },
                now,
            ),
            // Targets come from `select`; fail closed all the same.
            _ => unselected(Unselected::NoMatch).into(),
        }
    }

    /// Decides a request paused for its issuer's keys, with the keys there are now.
    pub fn resume(
        &self,
        target: Target,
        paused: Paused,
        request: &Request,
        keys: Option<&KeySet>,
        now: u64,
    ) -> Final {
        match self.config(target) {
            Some(config) => paused.resume(config, request, keys, now),
            None => unselected(Unselected::NoMatch),
        }
    }

    fn unmatched_answer(&self) -> Final {
        match self.unmatched {
            Unmatched::Reject => unselected(Unselected::NoMatch),
            Unmatched::Pass => Decision::Forward {
                edits: HeaderEdits::default(),
                outcome: Outcome::Unselected(Unselected::NoMatch),
                passage: None,
            },
        }
    }
}

/// Above this, the worst case of the verified-token caches gets a load warning: the worker's
/// linear memory holds them, and a VM out of memory is a VM that crashes.
const CACHE_WARNING_BYTES: usize = 256 << 20;

/// The caches' worst case per worker: every server's cache full of tokens at that server's
/// `maxTokenBytes`, each kept twice (the token, and its claims). Warned about, not refused: the
/// tokens clients really send are far smaller, and the operator chose the bounds.
fn cache_bound_warning(servers: &[Server], cache: CachePolicy) -> Option<String> {
    let per_token: usize = servers
        .iter()
        .map(|s| {
            s.issuers
                .iter()
                .map(|c| c.max_token_bytes)
                .max()
                .unwrap_or(0)
                .saturating_mul(2)
        })
        .fold(0, usize::saturating_add);
    let worst = per_token.saturating_mul(cache.capacity);
    (worst > CACHE_WARNING_BYTES).then(|| {
        format!(
            "verifiedTokenCache: full caches of tokens at maxTokenBytes could take {} MiB per \
             worker ({} server(s) x capacity {}); lower verifiedTokenCache.capacity or \
             jwtValidationOptions.maxTokenBytes",
            worst >> 20,
            servers.len(),
            cache.capacity
        )
    })
}

/// The verified-token caches, one per server: a token verified for one server is never an
/// answer for another, whatever its `aud`.
#[derive(Debug)]
pub struct TokenCaches(Vec<TokenCache>);

impl TokenCaches {
    pub fn new(plugin: &Plugin) -> Self {
        Self(
            plugin
                .servers
                .iter()
                .map(|_| TokenCache::new(plugin.token_cache))
                .collect(),
        )
    }

    /// Clears every server's cache (a key set changed; its tokens may be in any of them).
    pub fn clear(&mut self) {
        for cache in &mut self.0 {
            cache.clear();
        }
    }

    /// Hits over all servers.
    pub fn hits(&self) -> u64 {
        self.0
            .iter()
            .map(TokenCache::hits)
            .fold(0, u64::saturating_add)
    }
}

/// The local answer when no server takes a request.
fn unselected(why: Unselected) -> Final {
    let (status, error) = match why {
        Unselected::NoMatch => (404, "not_found"),
        Unselected::NotPlain => (400, "invalid_request"),
        Unselected::NoRouteServer => (500, "server_error"),
    };
    Decision::Respond {
        reply: LocalReply::json(status, error_body(error, why.description())),
        outcome: Outcome::Unselected(why),
    }
}

impl Server {
    /// `match.hosts`, lower-case (empty: any host).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// `match.pathPrefix` as matched (`/`: every path).
    pub fn path_prefix(&self) -> &str {
        &self.prefix
    }

    fn new(config: ServerConfig) -> Self {
        let fronted = config.issuers.iter().position(|c| c.provider.is_some());
        Self {
            name: config.name,
            hosts: config.hosts,
            prefix: config.path_prefix,
            issuers: config.issuers,
            fronted,
        }
    }

    fn matches(&self, authority: &str, path: &str) -> bool {
        within(path, &self.prefix) && self.matches_host(authority)
    }

    /// `:authority` against `match.hosts`, ignoring case; an entry without a port takes any.
    fn matches_host(&self, authority: &str) -> bool {
        self.hosts.is_empty()
            || self.hosts.iter().any(|host| {
                authority.eq_ignore_ascii_case(host) || same_host_any_port(host, authority)
            })
    }

    /// Whether one request could match both servers.
    fn overlaps(&self, other: &Self) -> bool {
        hosts_overlap(&self.hosts, &other.hosts)
            && (within(&self.prefix, &other.prefix) || within(&other.prefix, &self.prefix))
    }

    /// Which issuer checks the request's token: the one its unverified `iss` names. Paths the
    /// gateway answers itself go to the fronted issuer (or the first). `Err`: the token names
    /// an unknown issuer; the refusal is made with the settings of the issuer given.
    fn issuer_for(&self, request: &Request) -> Result<usize, usize> {
        let probe = self.fronted.unwrap_or(0);
        let Some(config) = self.issuers.get(probe) else {
            return Ok(0);
        };
        if self.issuers.len() == 1 || !matches!(decision::route(config, request), Route::Protected)
        {
            return Ok(probe);
        }
        let Ok(Some(credential)) = token::extract(&config.location, request) else {
            // No credential, or a malformed one: the mode's answer, the same from any issuer.
            return Ok(probe);
        };
        let largest = self.issuers.iter().map(|c| c.max_token_bytes).max();
        if largest.is_some_and(|max| credential.token.len() > max) {
            return Ok(probe);
        }
        match verify::unverified_issuer(credential.token) {
            Err(_) => Ok(probe),
            Ok(iss) => iss
                .and_then(|iss| self.issuers.iter().position(|c| c.claims.issuer == iss))
                .ok_or(probe),
        }
    }

    /// The paths this server answers whatever its `match`: its resource metadata, and a
    /// fronted provider's metadata, registration, key set and passage.
    fn owned_paths(&self, index: usize, at: &str) -> Vec<Owned> {
        let mut owned = Vec::new();
        let first = Target {
            server: index,
            issuer: 0,
        };
        let Some(config) = self.issuers.first() else {
            return owned;
        };
        let resource_path = config.metadata.resource_url().map(|url| {
            let path = url.path().trim_end_matches('/');
            path.to_string()
        });
        if let Some(path) = &resource_path {
            owned.push(Owned {
                path: format!("{PRM_PREFIX}{path}"),
                subtree: false,
                target: first,
                field: format!("{at}resourceMetadata.resource"),
                shared: false,
            });
        }
        let Some(fronted) = self.fronted else {
            return owned;
        };
        let Some(provider) = self.issuers.get(fronted).and_then(|c| c.provider.as_ref()) else {
            return owned;
        };
        let target = Target {
            server: index,
            issuer: fronted,
        };
        let field = if self.issuers.len() > 1 {
            format!("{at}issuers[{fronted}].provider.{}", provider.kind.name())
        } else {
            format!("{at}provider.{}", provider.kind.name())
        };
        let own = |path: String, subtree: bool, field: String, shared: bool| Owned {
            path,
            subtree,
            target,
            field,
            shared,
        };
        if let Some(path) = &resource_path {
            for prefix in AS_PREFIXES {
                owned.push(own(format!("{prefix}{path}"), false, field.clone(), false));
                owned.push(own(
                    format!("{prefix}{path}{REGISTRATION_SUFFIX}"),
                    false,
                    field.clone(),
                    false,
                ));
            }
        }
        let issuer_path = provider.issuer_path();
        if provider.kind == Provider::Keycloak {
            owned.push(own(
                format!("{issuer_path}{KEYCLOAK_CERTS_PATH}"),
                false,
                field.clone(),
                false,
            ));
        }
        if let Some(prefix) = &provider.gateway_prefix {
            let passage = format!("{field}.gatewayPrefix");
            owned.push(own(
                format!("{prefix}{issuer_path}"),
                true,
                passage.clone(),
                false,
            ));
            if provider.kind == Provider::Keycloak
                && let Some((base, _realm)) = issuer_path.rsplit_once("/realms/")
            {
                owned.push(own(
                    format!("{prefix}{base}/resources"),
                    true,
                    passage,
                    true,
                ));
            }
        }
        owned
    }
}

impl Owned {
    fn covers(&self, path: &str) -> bool {
        if self.subtree {
            path.strip_prefix(self.path.as_str())
                .is_some_and(|inside| inside.starts_with('/') && inside != "/")
        } else {
            path == self.path
        }
    }

    /// Whether `new` (of `server`, not yet listed) could take a request this one takes.
    fn clashes(&self, new: &Owned, servers: &[Server], server: &Server) -> bool {
        if self.shared && new.shared {
            return false;
        }
        let paths = match (self.subtree, new.subtree) {
            (false, false) => self.path == new.path,
            (true, false) => self.covers(&new.path),
            (false, true) => new.covers(&self.path),
            (true, true) => within(&self.path, &new.path) || within(&new.path, &self.path),
        };
        paths
            && servers
                .get(self.target.server)
                .is_none_or(|owner| hosts_overlap(&owner.hosts, &server.hosts))
    }
}

/// `path` is `prefix` or lies under it, on whole segments (`/` contains everything).
fn within(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether one `:authority` could match both host lists (empty: any host).
fn hosts_overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty()
        || b.is_empty()
        || a.iter().any(|x| {
            b.iter()
                .any(|y| x == y || same_host_any_port(x, y) || same_host_any_port(y, x))
        })
}

/// `bare` (a `match.hosts` entry without a port) names the host of `with_port`, ignoring case.
fn same_host_any_port(bare: &str, with_port: &str) -> bool {
    port_of(bare).is_none()
        && port_of(with_port).is_some_and(|port| {
            with_port
                .len()
                .checked_sub(port.len().saturating_add(1))
                .and_then(|end| with_port.get(..end))
                .is_some_and(|host| host.eq_ignore_ascii_case(bare))
        })
}

#[cfg(test)]
mod tests;
