//! The field path (`jwks.url`, `rules[2].allow`) at a position in a JSON text, so a config
//! error names its field. serde_json reports where it failed as line and column; walking the
//! text up to there is all the path tracking the parse needs (a tracking deserializer
//! wrapper cost about 35 KB of module for what only bad configs use).

enum Frame {
    /// The member whose value is being read (`None` before the first key), and whether its
    /// `:` was passed.
    Object { key: Option<String>, in_value: bool },
    /// The element being read.
    Array { index: usize },
}

/// The path at serde_json's `line` and `column` (1-based; the column counts bytes up to the
/// last one read) in `text`. `key_is_field`: whether a key read last (no `:` yet) is part of
/// the path; an externally tagged enum's variant is written as a key but is no field.
pub fn at_line_column(text: &[u8], line: usize, column: usize, key_is_field: bool) -> String {
    let line_start = if line <= 1 {
        Some(0)
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line.saturating_sub(2))
            .map(|(at, _)| at.saturating_add(1))
    };
    let end = line_start.map_or(text.len(), |start| start.saturating_add(column));
    at(text.get(..end).unwrap_or(text), key_is_field)
}

/// The path of the innermost value open at the end of `text`, in the usual
/// notation: keys joined by `.`, indices as `[i]`, `.` for the top.
fn at(text: &[u8], key_is_field: bool) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut bytes = text.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { in_value, .. }) => *in_value = false,
                Some(Frame::Array { index }) => *index = index.saturating_add(1),
                None => {}
            },
            b'"' => {
                let text = read_string(&mut bytes);
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key = Some(text);
                }
            }
            _ => {}
        }
    }
    if let Some(Frame::Object {
        key,
        in_value: false,
    }) = stack.last_mut()
        && !key_is_field
    {
        *key = None;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

/// The rest of a JSON string after its opening quote, escapes decoded where they are simple
/// (a key with `\u` escapes is shown as written).
fn read_string(bytes: &mut impl Iterator<Item = u8>) -> String {
    let mut out = Vec::new();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => break,
            b'\\' => match bytes.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(b'r') => out.push(b'\r'),
                Some(b'b') => out.push(0x08),
                Some(b'f') => out.push(0x0c),
                Some(b'u') => out.extend_from_slice(b"\\u"),
                Some(other) => out.push(other),
                None => break,
            },
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_at_the_end_of_a_prefix() {
        for (text, path) in [
            ("", "."),
            ("{", "."),
            (r#"{"a""#, "a"),
            (r#"{"a": 1, "b": {"c": "x""#, "b.c"),
            (r#"{"a": {"b": 1}"#, "a"),
            (r#"{"a": {"b": 1}}"#, "."),
            (
                r#"{"rules": [{"allow": 1}, {"allow": true"#,
                "rules[1].allow",
            ),
            (r#"{"s": [[1, 2], [3"#, "s[1][0]"),
            (r#"{"k\"e,y:": {"x"#, "k\"e,y:.x"),
            (r#"{"a": "}{[,:", "b""#, "b"),
            (r#"{"a": [], "b": 2"#, "b"),
        ] {
            assert_eq!(at(text.as_bytes(), true), path, "{text}");
        }
        assert_eq!(at(br#"{"provider": {"okta""#, false), "provider");
        assert_eq!(at(br#"{"mode": "mode""#, false), "mode");
    }

    #[test]
    fn lines_and_columns_are_serde_json_s() {
        let text = "{\n  \"jwks\": {\n    \"url\": 5\n  }\n}";
        assert_eq!(at_line_column(text.as_bytes(), 3, 12, true), "jwks.url");
        assert_eq!(at_line_column(text.as_bytes(), 4, 3, true), "jwks");
        assert_eq!(at_line_column(text.as_bytes(), 9, 1, true), ".");
    }
}
