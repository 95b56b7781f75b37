//! The small slice of URL handling the filter needs: absolute http(s) URLs split into
//! scheme, authority and path. No crate for this: the rules we need are few and strict.

use std::fmt::Write as _;

/// An absolute `http` or `https` URL, split at the places the filter cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub scheme: String,
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path_and_query: String,
}

impl HttpUrl {
    /// Parses `http(s)://authority[/path][?query]`; rejects fragments, user info and
    /// anything that is not printable ASCII.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("not an absolute http(s) URL (contains spaces or non-ASCII)");
        }
        let (scheme, rest) = input
            .split_once("://")
            .ok_or("not an absolute http(s) URL")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("not an absolute http(s) URL");
        }
        if rest.contains('#') {
            return Err("must not contain a fragment");
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() {
            return Err("not an absolute http(s) URL (no host)");
        }
        if authority.contains('@') {
            return Err("must not contain user info");
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Self {
            scheme,
            authority: authority.to_string(),
            path_and_query,
        })
    }

    /// `scheme://authority`, the origin used to build well-known URLs.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        match self.path_and_query.split_once('?') {
            Some((path, _)) => path,
            None => &self.path_and_query,
        }
    }
}

/// The whole URL, as configured or discovered (for logs).
impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

/// Whether two resource identifiers name the same resource: equal, or equal once the scheme
/// and host of an `http(s)` URL are lower-cased (MCP 2026-07-28: servers SHOULD accept an
/// upper-case scheme and host). Path and query stay case-sensitive.
pub fn same_resource(a: &str, b: &str) -> bool {
    a == b || matches!((canonical(a), canonical(b)), (Some(a), Some(b)) if a == b)
}

/// `scheme://authority` lower-cased, the rest as it is; `None` for anything else.
fn canonical(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    Some(format!(
        "{scheme}://{}{tail}",
        authority.to_ascii_lowercase()
    ))
}

/// What could make servers read a path differently after normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// `%`, `\\` or `;`: servers that decode escapes or strip path parameters read `..;` as `..`.
    Escape,
    /// An empty (`//`), `.` or `..` segment.
    Segment,
}

/// The first reason `path` is not plain, if any.
pub fn path_problem(path: &str) -> Option<PathProblem> {
    if path.contains(['%', '\\', ';']) {
        Some(PathProblem::Escape)
    } else if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
        Some(PathProblem::Segment)
    } else {
        None
    }
}

/// A path no server could read differently after normalisation.
pub fn is_plain_path(path: &str) -> bool {
    path_problem(path).is_none()
}

/// The gateway's issuer identifier for a resource: the resource URL without query or trailing
/// slash, so its RFC 8414 metadata lives at `/.well-known/oauth-authorization-server{path}`.
pub fn gateway_issuer(resource: &str) -> String {
    let without_query = resource.split(['?', '#']).next().unwrap_or(resource);
    without_query.trim_end_matches('/').to_string()
}

/// RFC 3986 unreserved characters: all that stays raw in a query name or value.
pub fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// What may stay raw in a URL written into a quoted header value or a JSON string: printable
/// ASCII but the quote, backslash and the characters RFC 3986 never allows.
pub fn url_safe(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'"' | b'\\' | b'<' | b'>' | b'`' | b'{' | b'}' | b'^' | b'|'
        )
}

/// Percent-encodes every byte `keep` refuses (`%XX`, upper-case hex).
pub fn percent_encode(text: &str, keep: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    push_percent_encoded(&mut out, text, keep);
    out
}

/// [`percent_encode`], appending to `out`.
pub fn push_percent_encoded(out: &mut String, text: &str, keep: fn(u8) -> bool) {
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// `url` with `name=value` (percent-encoded) merged into its query, replacing any earlier
/// `name`, and keeping a fragment last.
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(name))
        .collect();
    let added = format!(
        "{}={}",
        percent_encode(name, unreserved),
        percent_encode(value, unreserved)
    );
    pairs.push(&added);
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_compare_with_case_folded_scheme_and_host_only() {
        let canonical = "https://mcp.example.com/mcp";
        for same in [
            canonical,
            "HTTPS://MCP.EXAMPLE.COM/mcp",
            "Https://Mcp.Example.com/mcp",
        ] {
            assert!(same_resource(same, canonical), "{same}");
            assert!(same_resource(canonical, same), "{same}");
        }
        for other in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "urn:MCP",
        ] {
            assert!(!same_resource(other, canonical), "{other}");
        }
        assert!(same_resource("urn:x", "urn:x"));
        assert!(!same_resource("URN:x", "urn:x"));
    }

    #[test]
    fn splits_absolute_urls() {
        let url = HttpUrl::parse("https://gw.example.com/base?x=1").unwrap();
        assert_eq!(url.origin(), "https://gw.example.com");
        assert_eq!(url.path_and_query, "/base?x=1");
        assert_eq!(url.path(), "/base");
        assert_eq!(url.to_string(), "https://gw.example.com/base?x=1");
        let bare = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(bare.path_and_query, "/");
        let query_only = HttpUrl::parse("http://h?a=b").unwrap();
        assert_eq!(query_only.path_and_query, "/?a=b");
    }

    #[test]
    fn rejects_what_is_not_an_absolute_http_url() {
        for bad in [
            "",
            "/relative",
            "ftp://h/x",
            "https://",
            "https:///path",
            "https://user@h/",
            "https://h/a#frag",
            "https://h/ a",
            "https://hé/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
