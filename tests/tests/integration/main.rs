//! The testbed's integration tests, one module per subject, in one binary:
//! every test binary links wasmtime, and linking it once instead of once
//! per file is most of what `cargo test` spends building the tests.
//!
//! Tests that measure this process's memory live in binaries of their own
//! (`tests/tests/*_memory.rs`): other tests running beside them would move
//! the numbers.
//!
//! Run one subject with `cargo test --workspace --test integration -- proxy::`.

mod aggregate;
mod artifact_cache;
mod cache;
mod call_path;
mod config_errors;
mod contract;
mod cors;
mod dashboard;
mod deadlines;
mod demo;
mod fanout;
mod grpc;
mod grpc_transcode;
mod hostile;
mod http1_wire;
mod ip_filter;
mod isolation;
mod jwks;
mod jwt_auth;
mod key_auth;
mod path_params;
mod plugin_breaker;
mod plugin_edits;
mod plugins_dir;
mod prefetch;
mod proxy;
mod rate_limit;
mod reload;
mod response_edits;
mod server_h2;
mod server_limits;
mod server_shutdown;
mod server_smuggling;
mod server_tls;
mod server_websocket;
mod telemetry;
mod traces;
mod transform;
mod upstream_balance;
mod upstream_breaker;
mod upstream_dns;
mod upstream_health;
mod upstream_reload;
mod upstream_retry;
mod upstream_tls;

// Helpers shared by several subjects.
mod server_common;
mod upstream_common;
