//! `mcp-authn`: the operator's checker, built on the same core as the filter.
//!
//! ```text
//! mcp-authn check-config CONFIG.json
//! mcp-authn verify --config CONFIG.json [--jwks JWKS.json] --token TOKEN|@FILE [--now SECS] [--path /mcp] [--authority HOST]
//! mcp-authn mint --key PRIVATE_JWK.json --claims JSON [--ttl SECS]
//! mcp-authn jwks --key PRIVATE_JWK.json
//! ```
//! Exit codes: 0 valid/accepted, 1 rejected, 2 bad input.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_authn::core::config::plugin::Selection;
use mcp_authn::core::config::{Config, KeySource};
use mcp_authn::core::decision::{Decision, KeyState, Outcome, Wait, decide};
use mcp_authn::core::jwks::KeySet;
use mcp_authn::core::request::Request;
use mcp_authn::core::servers::Plugin;
use mcp_authn::core::token::TokenLocation;
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

const USAGE: &str = "usage:
  mcp-authn check-config CONFIG.json
  mcp-authn verify --config CONFIG.json [--jwks JWKS.json] --token TOKEN|@FILE [--now SECS] [--path /mcp] [--authority HOST]
  mcp-authn mint --key PRIVATE_JWK.json --claims JSON [--ttl SECS]
  mcp-authn jwks --key PRIVATE_JWK.json";

/// A failure that is the caller's input, not the token's fault (exit code 2).
struct BadInput(String);

impl<E: std::fmt::Display> From<E> for BadInput {
    fn from(err: E) -> Self {
        Self(err.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    let result = match command {
        "check-config" => check_config(rest),
        "verify" => verify(rest),
        "mint" => mint(rest),
        "jwks" => jwks(rest),
        _ => Err(BadInput(USAGE.into())),
    };
    match result {
        Ok(code) => code,
        Err(BadInput(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` options after the subcommand.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i.saturating_add(1)))
        .map(String::as_str)
}

fn required<'a>(args: &'a [String], name: &str) -> Result<&'a str, BadInput> {
    option(args, name).ok_or_else(|| BadInput(format!("{name} is required\n{USAGE}")))
}

fn read(path: &str) -> Result<Vec<u8>, BadInput> {
    std::fs::read(path).map_err(|e| BadInput(format!("{path}: {e}")))
}

/// The plugin config, and whether it is written in the single-server shape with one issuer
/// (printed as before) rather than as servers.
fn load_plugin(path: &str) -> Result<(Plugin, bool), BadInput> {
    let bytes = read(path)?;
    let plugin = Plugin::from_json(&bytes).map_err(|e| BadInput(format!("{path}: {e}")))?;
    let one = serde_json::from_slice::<Value>(&bytes).is_ok_and(|raw| raw.get("servers").is_none())
        && plugin.servers.iter().all(|s| s.issuers.len() == 1);
    Ok((plugin, one))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_config(args: &[String]) -> Result<ExitCode, BadInput> {
    let path = args.first().ok_or_else(|| BadInput(USAGE.into()))?;
    let (plugin, one) = load_plugin(path)?;
    for warning in &plugin.warnings {
        eprintln!("warning: {warning}");
    }
    let issuers = |server: &mcp_authn::core::servers::Server| {
        server.issuers.iter().map(normalised).collect::<Vec<_>>()
    };
    let normalised = match plugin.servers.first() {
        Some(server) if one => server.issuers.first().map(normalised).unwrap_or_default(),
        _ => json!({
            "servers": plugin.servers.iter().map(|server| json!({
                "name": server.name,
                "match": {"hosts": server.hosts(), "pathPrefix": server.path_prefix()},
                "issuers": issuers(server),
            })).collect::<Vec<_>>(),
            "unmatched": format!("{:?}", plugin.unmatched).to_ascii_lowercase(),
            "serverSelection": match plugin.selection {
                Selection::Match => "match",
                Selection::RouteMetadata => "routeMetadata",
            },
        }),
    };
    println!("{}", serde_json::to_string_pretty(&normalised)?);
    Ok(ExitCode::SUCCESS)
}

/// One server's settings for one issuer, as the filter understood them.
fn normalised(config: &Config) -> Value {
    let keys = match &config.keys {
        KeySource::Inline(set) => {
            for skipped in set.skipped() {
                eprintln!("warning: jwks.inline: skipped {skipped}");
            }
            json!({"inline": {"usableKeys": set.keys().len(), "skippedKeys": set.skipped().len()}})
        }
        KeySource::Remote(remote) => json!({
            "url": remote.location.describe(),
            "cluster": remote.cluster,
            "timeoutMs": remote.timeout_ms,
            "cacheDurationSeconds": remote.cache_duration_secs,
            "minRefreshIntervalSeconds": remote.min_refresh_interval_secs,
        }),
    };
    let location = match &config.location {
        TokenLocation::Header { name, prefix } => {
            json!({"header": {"name": name.as_str(), "prefix": prefix}})
        }
        TokenLocation::QueryParameter { name } => json!({"queryParameter": {"name": name}}),
        TokenLocation::Cookie { name } => json!({"cookie": {"name": name}}),
    };
    json!({
        "issuer": config.claims.issuer,
        "audiences": config.claims.audiences,
        "mode": config.mode,
        "provider": config.provider.as_ref().map(|p| json!({
            "kind": p.kind.name(), "cluster": p.cluster,
        })),
        "jwks": keys,
        "resource": config.metadata.resource(),
        "jwtValidationOptions": {
            "requiredClaims": config.claims.required,
            "clockSkewSeconds": config.claims.clock_skew_secs,
            "maxTokenBytes": config.max_token_bytes,
        },
        "authorizationLocation": location,
        "clientId": config.provider.as_ref().and_then(|p| p.client_id.as_deref()),
        "claimsToHeaders": config.claim_headers.iter()
            .map(|m| json!({"claim": m.claim, "header": m.header})).collect::<Vec<_>>(),
    })
}

fn verify(args: &[String]) -> Result<ExitCode, BadInput> {
    let (plugin, _) = load_plugin(required(args, "--config")?)?;
    let token = required(args, "--token")?;
    let token = match token.strip_prefix('@') {
        Some(file) => String::from_utf8(read(file)?)?.trim().to_string(),
        None => token.to_string(),
    };
    let path = option(args, "--path").unwrap_or("/mcp");
    let authority = option(args, "--authority").unwrap_or("gateway.local");
    // Every server reads the credential from its own place: ask the first, then the one
    // the request selects.
    let Some(first) = plugin.servers.first().and_then(|s| s.issuers.first()) else {
        return Err(BadInput("the config has no server".into()));
    };
    let mut request = credential_request(&first.location, path, &token);
    request.authority = authority.into();
    let config = match plugin.select(&request, None) {
        Ok(target) => plugin.config(target).unwrap_or(first),
        Err(answered) => return Ok(report(&answered.decision.into())),
    };
    let file_keys = match option(args, "--jwks") {
        Some(path) => {
            let set = KeySet::parse(&read(path)?).map_err(|e| BadInput(format!("{path}: {e}")))?;
            Some(set)
        }
        None => None,
    };
    let keys = match (&file_keys, &config.keys) {
        (Some(set), _) => set,
        (None, KeySource::Inline(set)) => set.as_ref(),
        (None, KeySource::Remote(remote)) => {
            return Err(BadInput(format!(
                "the config fetches keys from {}; save that JWKS and pass --jwks FILE",
                remote.location.describe()
            )));
        }
    };
    for skipped in keys.skipped() {
        eprintln!("note: JWKS {skipped} (skipped)");
    }
    let now = match option(args, "--now") {
        Some(now) => now
            .parse()
            .map_err(|_| BadInput("--now: not a number of seconds".into()))?,
        None => now_secs(),
    };
    let decision = decide(
        config,
        &request,
        KeyState::Ready {
            keys,
            may_refetch: false,
        },
        now,
    );
    Ok(report(&decision))
}

/// A request carrying `token` where the config looks for it.
fn credential_request(location: &TokenLocation, path: &str, token: &str) -> Request {
    let mut request = Request {
        method: "POST".into(),
        path: path.into(),
        scheme: "https".into(),
        authority: "gateway.local".into(),
        headers: Vec::new(),
    };
    match location {
        TokenLocation::Header { name, prefix } => {
            request
                .headers
                .push((name.to_string(), format!("{prefix}{token}")));
        }
        TokenLocation::QueryParameter { name } => {
            let sep = if path.contains('?') { '&' } else { '?' };
            request.path = format!("{path}{sep}{name}={token}");
        }
        TokenLocation::Cookie { name } => {
            request
                .headers
                .push(("cookie".into(), format!("{name}={token}")));
        }
    }
    request
}

fn report(decision: &Decision) -> ExitCode {
    match decision {
        Decision::Forward {
            outcome: Outcome::Allowed { claims },
            edits,
            ..
        } => {
            println!("accepted: sub={}", claims.subject().unwrap_or("(none)"));
            for (name, value) in &edits.set {
                println!("  upstream header {name}: {value}");
            }
            ExitCode::SUCCESS
        }
        Decision::Forward { outcome, .. } => {
            println!("rejected, but passed upstream by the mode: {outcome:?}");
            ExitCode::from(1)
        }
        Decision::Respond { reply, outcome } => {
            match outcome {
                Outcome::Denied(denial) => println!("rejected: {denial}"),
                other => println!("answered locally: {other:?}"),
            }
            println!("  status {}", reply.status);
            for (name, value) in &reply.headers {
                println!("  {name}: {value}");
            }
            ExitCode::from(1)
        }
        Decision::Wait(Wait::FetchKeys { .. }) => {
            println!("rejected: keys unavailable");
            ExitCode::from(1)
        }
        Decision::Wait(Wait::AskIdp(call)) => {
            println!(
                "answered from the identity provider: {} {}{} via cluster {}",
                call.method, call.authority, call.path, call.cluster
            );
            ExitCode::from(1)
        }
        Decision::Wait(Wait::RegisterLocally { client_id }) => {
            println!("answered locally: a registration, with clientId {client_id}");
            ExitCode::from(1)
        }
    }
}

fn load_key(args: &[String]) -> Result<SigningKey, BadInput> {
    let jwk: Value = serde_json::from_slice(&read(required(args, "--key")?)?)?;
    Ok(SigningKey::from_jwk(&jwk)?)
}

fn mint(args: &[String]) -> Result<ExitCode, BadInput> {
    let key = load_key(args)?;
    let mut claims: Value = serde_json::from_str(required(args, "--claims")?)?;
    if !claims.is_object() {
        return Err(BadInput("--claims must be a JSON object".into()));
    }
    let ttl: u64 = option(args, "--ttl")
        .map(str::parse)
        .transpose()
        .map_err(|_| BadInput("--ttl: not a number of seconds".into()))?
        .unwrap_or(3600);
    let now = now_secs();
    if let Some(members) = claims.as_object_mut() {
        members.entry("iat").or_insert(json!(now));
        members
            .entry("exp")
            .or_insert(json!(now.saturating_add(ttl)));
    }
    println!("{}", key.mint(&claims));
    Ok(ExitCode::SUCCESS)
}

fn jwks(args: &[String]) -> Result<ExitCode, BadInput> {
    let key = load_key(args)?;
    println!("{}", json!({"keys": [key.public_jwk()]}));
    Ok(ExitCode::SUCCESS)
}
