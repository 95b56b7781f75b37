//! Configuration errors and the bounds check every numeric setting goes through. A leaf: each
//! feature validates its own settings with these, and `config.rs` only assembles the results.

use std::fmt;

/// A configuration error that names the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error one level down: `prefix` (`servers[1].`, `issuers[0].`) goes before the
    /// field path, so an error deep in one server's settings names which server.
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() || self.path == "." {
            prefix.trim_end_matches('.').to_string()
        } else {
            format!("{prefix}{}", self.path)
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// `value` (or `default` when unset) if it lies in `min..=max`; otherwise an error at `path`.
pub fn bounded(
    value: Option<u64>,
    default: u64,
    (min, max): (u64, u64),
    path: &str,
) -> Result<u64, ConfigError> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            path,
            format!("must be between {min} and {max}"),
        ))
    }
}

/// [`bounded`] for a size: a bound above `usize::MAX` (never on wasm32's limits) saturates.
pub fn bounded_size(
    value: Option<u64>,
    default: u64,
    range: (u64, u64),
    path: &str,
) -> Result<usize, ConfigError> {
    bounded(value, default, range, path).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}
