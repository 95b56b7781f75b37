//! The proxy-wasm host layer: turns core decisions into hostcalls. wasm32 only.
