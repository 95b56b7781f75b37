//! Proxy-wasm shared data and JWKS calls behind the key-fetch state machine's [`Host`] port.

use proxy_wasm::hostcalls::{get_shared_data, set_shared_data};

use crate::core::keyfetch::{Host, SharedData};
use crate::core::refresh::RemoteJwks;
use crate::core::url::HttpUrl;

use super::fetch;

/// The hostcalls of one remote key source.
pub struct Hostcalls {
    pub jwks: RemoteJwks,
}

impl SharedData for Hostcalls {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), String> {
        set_shared_data(key, Some(value), cas).map_err(|status| format!("{status:?}"))
    }
}

impl Host for Hostcalls {
    fn dispatch(&mut self, url: &HttpUrl) -> Result<u32, String> {
        fetch::dispatch(&self.jwks, url).map_err(|status| format!("{status:?}"))
    }
}
