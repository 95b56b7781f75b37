//! RFC 9207 for a fronted provider: the authorization response names the gateway.
//!
//! With `provider` set, the gateway's metadata names the gateway as the issuer, and MCP
//! clients (2026-07-28, SEP-2468) compare the authorization response's `iss` with it. The
//! provider puts its own issuer there. When the browser's login runs through the gateway's
//! passage (`gatewayPrefix`), the provider's redirect to the client passes the filter, which
//! replaces exactly that value with the gateway's issuer: the gateway is then truly the
//! authorization server the client talks to, and mix-up protection keeps its meaning. `iss` is
//! never removed; any other value (another issuer, a repeated `iss`, a bad escape) passes
//! unchanged, so the client still sees and refuses it.

use super::provider::{ProviderConfig, passage_path};
use super::request::Request;
use super::url::{percent_encode, unreserved};

/// What a passage request's redirect may carry back, and what the client must see instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageReturn {
    /// The provider's issuer, exactly as it writes it into `iss`.
    provider_issuer: String,
    /// The issuer of the gateway's metadata.
    gateway_issuer: String,
}

/// The rewrite for a request in the provider's passage; `None` for every other request.
pub fn passage_return(provider: &ProviderConfig, request: &Request) -> Option<PassageReturn> {
    passage_path(provider, request)?;
    // `gatewayPrefix` requires a resource (provider.rs), so the gateway's issuer is fixed.
    Some(PassageReturn {
        provider_issuer: provider.issuer_id.clone(),
        gateway_issuer: provider.gateway_issuer.clone()?,
    })
}

impl PassageReturn {
    /// The `Location` to send instead, for a 3xx answer whose query has exactly one `iss`
    /// equal to the provider's issuer; `None` leaves the answer unchanged.
    pub fn location(&self, status: u32, location: &str) -> Option<String> {
        if !(300..400).contains(&status) {
            return None;
        }
        let (before_fragment, fragment) = match location.split_once('#') {
            Some((head, fragment)) => (head, Some(fragment)),
            None => (location, None),
        };
        let (base, query) = before_fragment.split_once('?')?;
        let mut iss_at = None;
        let pairs: Vec<&str> = query.split('&').collect();
        for (index, pair) in pairs.iter().enumerate() {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if form_decode(name).as_deref() != Some("iss") {
                continue;
            }
            if iss_at.is_some() {
                return None; // a repeated iss: leave the refusal to the client
            }
            iss_at = Some((index, value));
        }
        let (index, value) = iss_at?;
        if form_decode(value).as_deref() != Some(self.provider_issuer.as_str()) {
            return None;
        }
        let replaced = format!("iss={}", percent_encode(&self.gateway_issuer, unreserved));
        let query: Vec<&str> = pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| if i == index { replaced.as_str() } else { pair })
            .collect();
        let mut out = format!("{base}?{}", query.join("&"));
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        Some(out)
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); `None` for a bad escape or
/// bytes that are not UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = hex(bytes.next()?)?;
                let low = hex(bytes.next()?)?;
                out.push(high << 4 | low);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use crate::core::config::Config;

    /// As the host asks: only with a provider configured.
    fn passage_return(config: &Config, request: &Request) -> Option<PassageReturn> {
        super::passage_return(config.provider.as_ref()?, request)
    }
    use super::*;
    use serde_json::json;

    const KC: &str = "http://127.0.0.1:10000/realms/mcp";
    const GW: &str = "http://127.0.0.1:10000/mcp";
    const KC_ENC: &str = "http%3A%2F%2F127.0.0.1%3A10000%2Frealms%2Fmcp";
    const GW_ENC: &str = "http%3A%2F%2F127.0.0.1%3A10000%2Fmcp";

    fn config(prefix: &str) -> Config {
        Config::from_json(
            json!({
                "issuer": KC,
                "jwks": {"cluster": "idp"},
                "provider": {"keycloak": {"gatewayPrefix": prefix}},
                "resourceMetadata": {"resource": format!("{GW}/")},
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn request(path: &str) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            scheme: "http".into(),
            authority: "127.0.0.1:10000".into(),
            headers: vec![],
        }
    }

    fn rewrite() -> PassageReturn {
        passage_return(
            &config(""),
            &request("/realms/mcp/login-actions/authenticate?session_code=x"),
        )
        .unwrap()
    }

    #[test]
    fn only_passage_requests_carry_a_rewrite() {
        let config = config("");
        assert_eq!(
            passage_return(
                &config,
                &request("/realms/mcp/protocol/openid-connect/auth?a=b")
            ),
            Some(PassageReturn {
                provider_issuer: KC.into(),
                gateway_issuer: GW.into(),
            })
        );
        for path in [
            "/mcp",
            "/realms/other/x",
            "/.well-known/oauth-authorization-server/mcp",
        ] {
            assert_eq!(passage_return(&config, &request(path)), None, "{path}");
        }
        let direct = Config::from_json(
            json!({"issuer": KC, "jwks": {"cluster": "idp"}, "provider": {"keycloak": {}},
                   "resourceMetadata": {"resource": GW}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            passage_return(&direct, &request("/realms/mcp/protocol/x")),
            None
        );
    }

    #[test]
    fn the_providers_issuer_becomes_the_gateways() {
        let location = format!(
            "http://127.0.0.1:5555/callback?state=s%2B1&session_state=abc&iss={KC_ENC}&code=c.d.e"
        );
        assert_eq!(
            rewrite().location(302, &location).as_deref(),
            Some(
                format!(
                    "http://127.0.0.1:5555/callback?state=s%2B1&session_state=abc&iss={GW_ENC}&code=c.d.e"
                )
                .as_str()
            )
        );
        // Any 3xx, any spelling of the same value, the fragment kept last.
        let plain = format!("https://app/cb?code=1&iss={KC}#top");
        assert_eq!(
            rewrite().location(303, &plain).as_deref(),
            Some(format!("https://app/cb?code=1&iss={GW_ENC}#top").as_str())
        );
        let encoded_name = format!("https://app/cb?%69ss={KC_ENC}&code=1");
        assert_eq!(
            rewrite().location(307, &encoded_name).as_deref(),
            Some(format!("https://app/cb?iss={GW_ENC}&code=1").as_str())
        );
    }

    #[test]
    fn everything_else_passes_unchanged() {
        let r = rewrite();
        let cases = [
            // Not a redirect.
            (200, format!("https://app/cb?iss={KC_ENC}")),
            (404, format!("https://app/cb?iss={KC_ENC}")),
            // Another issuer, a near miss, an empty value: the client must see them as they are.
            (
                302,
                "https://app/cb?iss=https%3A%2F%2Fevil.example&code=1".to_string(),
            ),
            (302, format!("https://app/cb?iss={KC_ENC}%2F&code=1")),
            (302, format!("https://app/cb?iss={KC_ENC}x")),
            (302, "https://app/cb?iss=&code=1".to_string()),
            (302, "https://app/cb?iss&code=1".to_string()),
            // Repeated iss, even when one of them matches.
            (302, format!("https://app/cb?iss={KC_ENC}&iss={KC_ENC}")),
            (302, format!("https://app/cb?iss={KC_ENC}&%69ss=x")),
            // Bad escapes, no query, iss only in the fragment (not an authorization response
            // of the query response mode).
            (302, "https://app/cb?iss=%zz".to_string()),
            (302, "https://app/cb".to_string()),
            (302, format!("https://app/cb#iss={KC_ENC}")),
            // An IdP-internal redirect.
            (
                302,
                "/realms/mcp/login-actions/required-action?execution=x".to_string(),
            ),
        ];
        for (status, location) in cases {
            assert_eq!(r.location(status, &location), None, "{status} {location}");
        }
    }

    #[test]
    fn form_decoding_is_strict() {
        assert_eq!(form_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(form_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(form_decode("%"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%ff"), None);
    }
}
