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

use super::url::{percent_encode, unreserved};

/// What a passage request's redirect may carry back, and what the client must see instead.
/// Made once at load (`gatewayPrefix` requires a resource, so the gateway's issuer is fixed)
/// and shared by every passage request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageReturn {
    /// The provider's issuer, exactly as it writes it into `iss`.
    provider_issuer: String,
    /// `iss=` and the gateway's issuer, encoded for a query.
    gateway_iss_pair: String,
}

impl PassageReturn {
    pub fn new(provider_issuer: String, gateway_issuer: &str) -> Self {
        Self {
            provider_issuer,
            gateway_iss_pair: format!("iss={}", percent_encode(gateway_issuer, unreserved)),
        }
    }

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
        let query: Vec<&str> = pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                if i == index {
                    self.gateway_iss_pair.as_str()
                } else {
                    pair
                }
            })
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
mod tests;
