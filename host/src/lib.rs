//! wasmgate: an API gateway whose routes run pipelines of sandboxed
//! WebAssembly plugins.
//!
//! A request's path through the crate, which is also the order of its
//! modules: each imports only modules further down the path.
//!
//! ```text
//! config (file shape → checked Config) ─▶ snapshot (router, routes, plugin pools, upstreams)
//! server ─▶ gateway.handle ─▶ handler: normalise ─▶ route ─▶ pipeline.request_phase
//!        ─▶ upstream.send (or a plugin's reply) ─▶ pipeline.response_phase ─▶ client
//! ```
//!
//! The server serves any `server::Site` and knows nothing of gateways or
//! configs; `main.rs` wires the gateway into it. Plugins run in
//! `runtime`: one wasmtime engine, warm pools of configured instances, a
//! time and memory budget on every call; the request and response they
//! see (`message`) lie below both the runtime and the pipeline. What the
//! gateway answers itself is one type, `answer::Answer`. HTTP/1.1 on both
//! sides of the proxy is the crate's own (`http1`); HTTP/2 is hyper's.

#![warn(missing_docs, unreachable_pub)]

mod admin;
mod answer;
mod body;
mod clock;
mod config;
mod fields;
mod gateway;
mod grpc;
mod handler;
mod http1;
#[doc(hidden)]
pub mod internals;
mod logging;
mod message;
mod normalize;
mod pipeline;
mod proxy_headers;
mod reload;
mod router;
mod runtime;
mod server;
mod services;
mod snapshot;
mod state;
mod telemetry;
mod upstream;
mod websocket;

pub use admin::{serve_admin, status};
pub use body::Body;
pub use config::{Config, ConfigError, ConfigErrors, load as load_config, parse as parse_config};
pub use gateway::{Gateway, StartError};
pub use logging::{init as init_logging, install_panic_hook};
pub use reload::{DEBOUNCE, Diff, RECENT_RELOADS, ReloadError, ReloadEvent, ReloadStatus, Watcher, watch};
pub use runtime::{compile_in_child_processes, compile_plugin};
pub use server::{Listeners, OpenConnections, Running, Site, bind, serve, serve_listeners, shutdown_signal};
