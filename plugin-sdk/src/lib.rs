//! Write wasmgate gateway plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`], exported with
//! [`export_plugin!`] from a `cdylib` crate built for `wasm32-wasip2`. The
//! gateway configures each instance once with the plugin's JSON config, then
//! calls it for each request of the routes whose pipeline names it.
//!
//! ```
//! use wasmgate_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     greeting: String,
//! }
//!
//! struct Greeter {
//!     greeting: String,
//! }
//!
//! impl Plugin for Greeter {
//!     type Config = Config;
//!
//!     fn configure(config: Config) -> Result<Self, String> {
//!         if config.greeting.is_empty() {
//!             return Err("`greeting` must not be empty".into());
//!         }
//!         Ok(Greeter { greeting: config.greeting })
//!     }
//!
//!     fn on_request(&self, req: &Request) -> Action {
//!         if req.header("authorization").is_none() {
//!             return Reply::problem(401, "Unauthorized", "log in first").into();
//!         }
//!         log::info(format!("greeting {}", req.client_addr()));
//!         req.set_header("x-greeting", &self.greeting);
//!         Action::Continue
//!     }
//! }
//!
//! export_plugin!(Greeter);
//! ```
//!
//! * [`Request`] and [`Response`] are views of the host's objects: reading a
//!   header copies that header only. Bodies are only available when asked
//!   for in [`Plugin::needs`].
//! * [`host`] is what the gateway offers: logging, clocks, shared state
//!   (rate limits, counters, key/value), outbound HTTP in concurrent
//!   batches, metrics.
//! * [`testing`] runs all of it natively, so `cargo test` covers a plugin's
//!   logic without wasm.
//!
//! The crate's README is the full guide, from `cargo new` to a gateway
//! config.

// The bindings name this crate by path, so that `export_plugin!` expanded in
// a plugin crate and the SDK itself agree.
extern crate self as wasmgate_sdk;

#[doc(hidden)]
pub mod alloc_cache;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;
#[doc(hidden)]
pub mod edits;
pub mod gcra;
#[cfg(target_arch = "wasm32")]
mod guest;
pub mod host;
#[doc(hidden)]
pub mod input;
mod plugin;
mod records;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;
mod types;

pub use plugin::{NoConfig, Plugin};
pub use types::{Action, BodyError, Headers, LogLevel, Message, Needs, Reply, Request, Response};

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::host::http::{self, FetchError, OutboundRequest, OutboundResponse};
    pub use crate::host::{clock, log, metrics, state};
    pub use crate::{Action, BodyError, LogLevel, Needs, NoConfig, Plugin, Reply, Request, Response, export_plugin};
    pub use serde::{Deserialize, Serialize};
}

/// What `export_plugin!` expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings;
    #[cfg(target_arch = "wasm32")]
    pub use crate::guest::{configure, on_request, on_response};
    pub use crate::plugin::{Slot, assert_plugin};
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
}
