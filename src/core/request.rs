//! A plain view of the request: pseudo-headers and the headers the core reads.

use std::sync::Arc;

/// What the core needs to know about a request, copied out of the host once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// `:path` as received: path and query.
    pub path: String,
    pub scheme: String,
    pub authority: String,
    /// Headers with lower-case names, in arrival order; repeated names stay separate.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Every value of header `name` (lower-case).
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }

    /// The query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// `scheme://authority` as the client saw it: the first `x-forwarded-proto` value when a
    /// proxy in front set one, else `:scheme`.
    pub fn external_origin(&self) -> String {
        let forwarded = self
            .header_values("x-forwarded-proto")
            .next()
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| v.eq_ignore_ascii_case("http") || v.eq_ignore_ascii_case("https"));
        let scheme = forwarded.unwrap_or(&self.scheme).to_ascii_lowercase();
        let scheme = if scheme.is_empty() {
            "http".to_string()
        } else {
            scheme
        };
        format!("{scheme}://{}", self.authority)
    }
}

/// An RFC 9110 `token` (one or more `tchar`): what header and cookie names are made of.
pub fn is_http_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header name the host removes. Names from the config are shared, not copied, per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName(Arc<str>);

impl HeaderName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for HeaderName {
    fn from(name: &str) -> Self {
        Self(Arc::from(name))
    }
}

impl From<String> for HeaderName {
    fn from(name: String) -> Self {
        Self(Arc::from(name))
    }
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for HeaderName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for HeaderName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: "/sse?x=1".into(),
            scheme: "http".into(),
            authority: "example.com".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn external_origin_prefers_the_first_forwarded_proto() {
        assert_eq!(request(&[]).external_origin(), "http://example.com");
        let forwarded = request(&[("x-forwarded-proto", "https, http")]);
        assert_eq!(forwarded.external_origin(), "https://example.com");
        let bogus = request(&[("x-forwarded-proto", "javascript")]);
        assert_eq!(bogus.external_origin(), "http://example.com");
    }

    #[test]
    fn path_and_query_split() {
        let r = request(&[]);
        assert_eq!(r.path_only(), "/sse");
        assert_eq!(r.query(), Some("x=1"));
    }
}
