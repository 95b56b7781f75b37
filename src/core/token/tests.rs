use super::*;

fn request(path: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        scheme: "https".into(),
        authority: "mcp.example.com".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn bearer() -> TokenLocation {
    TokenLocation::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
    }
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc"] {
        let req = request("/mcp", &[("authorization", value)]);
        let found = extract(&bearer(), &req).unwrap().unwrap();
        assert_eq!(found.token, "abc", "{value}");
        assert_eq!(found.removal, Removal::Header("authorization".into()));
    }
}

#[test]
fn other_schemes_and_absent_headers_are_no_credential() {
    for headers in [
        vec![],
        vec![("authorization", "Basic dXNlcjpwdw==")],
        vec![("authorization", "Bearerabc")],
        vec![("x-other", "Bearer abc")],
    ] {
        let req = request("/mcp", &headers);
        assert_eq!(extract(&bearer(), &req), Ok(None), "{headers:?}");
    }
}

#[test]
fn malformed_credentials_are_invalid_requests() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], InvalidRequest);
    let cases: [Case; 7] = [
        (
            "/mcp",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            InvalidRequest::MultipleCredentials,
        ),
        (
            "/mcp",
            &[("authorization", "Bearer a,Bearer b")],
            InvalidRequest::MultipleCredentials,
        ),
        (
            "/mcp",
            &[("authorization", "Bearer")],
            InvalidRequest::EmptyToken,
        ),
        (
            "/mcp",
            &[("authorization", "Bearer   ")],
            InvalidRequest::EmptyToken,
        ),
        ("/mcp?access_token=abc", &[], InvalidRequest::TokenInUri),
        ("/mcp?access%5Ftoken=abc", &[], InvalidRequest::TokenInUri),
        (
            "/mcp?access_token=abc",
            &[("authorization", "Bearer abc")],
            InvalidRequest::TokenInUri,
        ),
    ];
    for (path, headers, expected) in cases {
        let req = request(path, headers);
        assert_eq!(
            extract(&bearer(), &req),
            Err(expected),
            "{path} {headers:?}"
        );
    }
}

#[test]
fn query_location_removes_only_its_parameter() {
    let location = TokenLocation::QueryParameter {
        name: "token".into(),
    };
    let req = request("/mcp?a=1&token=abc&b=2", &[]);
    let found = extract(&location, &req).unwrap().unwrap();
    assert_eq!(found.token, "abc");
    assert_eq!(found.removal, Removal::Path("/mcp?a=1&b=2".into()));
    let only = request("/mcp?token=abc", &[]);
    let found = extract(&location, &only).unwrap().unwrap();
    assert_eq!(found.removal, Removal::Path("/mcp".into()));
    // An encoded spelling of the name is the same parameter to the upstream.
    let encoded = request("/mcp?token=a&tok%65n=b", &[]);
    assert_eq!(
        extract(&location, &encoded),
        Err(InvalidRequest::MultipleCredentials)
    );
    let twice = request("/mcp?token=a&token=b", &[]);
    assert_eq!(
        extract(&location, &twice),
        Err(InvalidRequest::MultipleCredentials)
    );
    let two_places = request("/mcp?token=a", &[("authorization", "Bearer b")]);
    assert_eq!(
        extract(&location, &two_places),
        Err(InvalidRequest::MultipleCredentials)
    );
}

#[test]
fn cookie_location_rewrites_the_cookie_header() {
    let location = TokenLocation::Cookie { name: "at".into() };
    let req = request("/mcp", &[("cookie", "a=1; at=tok; b=2")]);
    let found = extract(&location, &req).unwrap().unwrap();
    assert_eq!(found.token, "tok");
    assert_eq!(found.removal, Removal::Cookie(Some("a=1; b=2".into())));
    let alone = request("/mcp", &[("cookie", "at=tok")]);
    assert_eq!(
        extract(&location, &alone).unwrap().unwrap().removal,
        Removal::Cookie(None)
    );
    let prefix_name = request("/mcp", &[("cookie", "att=x")]);
    assert_eq!(extract(&location, &prefix_name), Ok(None));
    let twice = request("/mcp", &[("cookie", "at=a"), ("cookie", "at=b")]);
    assert_eq!(
        extract(&location, &twice),
        Err(InvalidRequest::MultipleCredentials)
    );
}

#[test]
fn contains_byte_finds_the_needle_at_every_position() {
    for len in 0..40 {
        let clean = "a".repeat(len);
        assert!(!contains_byte(&clean, b','), "len {len}");
        for at in 0..len {
            let mut bytes = clean.clone().into_bytes();
            bytes[at] = b',';
            let text = String::from_utf8(bytes).unwrap();
            assert!(contains_byte(&text, b','), "len {len} at {at}");
        }
    }
    // Bytes next to the needle's value, and high bytes, are not the needle.
    for other in ["+-.", "\u{ac}\u{2c00}", "\u{7f}\u{80}"] {
        assert!(!contains_byte(&other.repeat(5), b','), "{other:?}");
    }
}
