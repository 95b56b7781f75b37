//! Every plugin config the documentation shows passes `mcp-authn check-config`: the JSON
//! blocks of every Markdown file in the repository (README.md, docs/, envoy/, …), and the
//! configs embedded in the example Envoy files. A renamed field or a tightened rule breaks
//! this before it breaks a reader.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)] // test code

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-authn");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Completes a Markdown fragment (`"mcpAuthorization": {…}`) into a config.
const BASE: &str = r#""issuer": "https://idp.example.com", "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"}, "resourceMetadata": {"resource": "https://mcp.example.com/mcp"}"#;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap()
}

/// The ```json blocks of a Markdown file, fragments completed with `BASE`.
fn markdown_configs(path: &str) -> Vec<String> {
    let text = read(path);
    let mut configs = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").unwrap();
        let block = body[..end].trim();
        configs.push(if block.starts_with('{') {
            block.to_string()
        } else {
            format!("{{{BASE}, {block}}}")
        });
        rest = &body[end + 3..];
    }
    configs
}

/// The JSON under `value: |` in an Envoy YAML file (the Wasm filter's configuration).
fn envoy_configs(path: &str) -> Vec<String> {
    let text = read(path);
    let lines: Vec<&str> = text.lines().collect();
    let mut configs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "value: |" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        configs.push(block.join("\n"));
    }
    configs
}

fn check(origin: &str, config: &str) {
    let file = std::env::temp_dir().join(format!(
        "mcp-authn-doc-config-{}-{}.json",
        std::process::id(),
        origin.replace(['/', ' ', '#'], "_")
    ));
    std::fs::write(&file, config).unwrap();
    let output = Command::new(BIN)
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{origin} fails check-config:\n{config}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The repository's Markdown files (relative paths, sorted), skipping build output,
/// installed dependencies and hidden directories.
fn markdown_files(dir: &str, found: &mut Vec<String>) {
    let full = if dir.is_empty() {
        ROOT.to_string()
    } else {
        format!("{ROOT}/{dir}")
    };
    for entry in std::fs::read_dir(full).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        let skipped =
            name.starts_with('.') || ["target", "node_modules", "dist"].contains(&name.as_str());
        if entry.file_type().unwrap().is_dir() {
            if !skipped {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
    found.sort();
}

#[test]
fn every_documented_config_passes_check_config() {
    let mut files = Vec::new();
    markdown_files("", &mut files);
    let mut checked = 0;
    let mut per_file = std::collections::BTreeMap::new();
    for path in &files {
        let configs = markdown_configs(path);
        for (i, config) in configs.iter().enumerate() {
            check(&format!("{path} block {i}"), config);
            checked += 1;
        }
        per_file.insert(path.as_str(), configs.len());
    }
    // Guards the extraction itself: the files that show configs must be found and read.
    for (path, at_least) in [
        ("README.md", 1),
        ("docs/configuration.md", 1),
        ("docs/identity-providers.md", 2),
        ("docs/mcp-authorization.md", 1),
        ("docs/many-servers.md", 2),
    ] {
        let found = per_file.get(path).copied().unwrap_or(0);
        assert!(
            found >= at_least,
            "{path}: {found} configs found, {at_least} expected"
        );
    }
    for path in [
        "envoy/envoy.yaml",
        "envoy/demo/envoy-demo.yaml",
        "envoy/idp/envoy-keycloak.yaml",
        "envoy/multi/envoy-multi.yaml",
    ] {
        let configs = envoy_configs(path);
        assert_eq!(configs.len(), 1, "{path}: one embedded config expected");
        check(path, &configs[0]);
        checked += 1;
    }
    // README (1) + docs (6) + 4 Envoy files.
    assert!(checked >= 11, "only {checked} configs found");
}
