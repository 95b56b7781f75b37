//! Header reads that cannot panic. The SDK's `get_map` and `get_map_value` unwrap UTF-8, but
//! HTTP header values may carry any byte above 0x7F (obs-text), and Envoy passes them on: one
//! such header would panic the VM and fail every later request on that worker. Values are read
//! as bytes here and made text lossily (U+FFFD), which no check of the core accepts as part of
//! a token, a mirrored MCP header or a URL.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Bytes, MapType};

/// Every header of `map`, names as sent (Envoy's codecs only pass token names), values as text.
pub fn all(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map_bytes(map)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, text(value)))
        .collect()
}

/// One header's value, if present.
pub fn value(map: MapType, name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(map, name)
        .ok()
        .flatten()
        .map(text)
}

fn text(value: Bytes) -> String {
    String::from_utf8(value)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}
