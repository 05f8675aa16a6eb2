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

pub mod admin;
mod answer;
pub mod body;
mod clock;
pub mod config;
mod fields;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod handler;
mod http1;
pub mod logging;
mod message;
pub mod normalize;
pub mod pipeline;
pub mod proxy_headers;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod state;
pub mod upstream;
mod websocket;

pub use gateway::{Gateway, StartError};
