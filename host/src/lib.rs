//! wasmgate: an API gateway whose routes run pipelines of sandboxed
//! WebAssembly plugins.
//!
//! A request's path through the crate:
//!
//! ```text
//! config (file shape → checked Config) ─▶ snapshot (router, routes, plugin pools, upstreams)
//! server ─▶ gateway.handle ─▶ handler: router.lookup ─▶ pipeline.request_phase
//!        ─▶ upstream.send (or a plugin's reply) ─▶ pipeline.response_phase ─▶ client
//! ```
//!
//! Plugins run in [`runtime`]: one wasmtime engine, warm pools of configured
//! instances, a time and memory budget on every call. HTTP/1.1 on both
//! sides of the proxy is the crate's own (`http1`); HTTP/2 is hyper's.

pub mod admin;
pub mod body;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod handler;
mod http1;
pub mod logging;
pub mod normalize;
pub mod pipeline;
pub mod problem;
pub mod proxy_headers;
pub mod reload;
pub mod router;
pub mod runtime;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod state;
pub mod upstream;

pub use gateway::{Gateway, StartError};
