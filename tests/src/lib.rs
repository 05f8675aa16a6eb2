//! Real parts for tests, benches and the demo: plugins built as wasm
//! components, upstream services on loopback ports, gateways started from
//! TOML text (written by hand or with [`config`]), and a small HTTP client.

pub mod browser;
pub mod cargo_env;
pub mod client;
pub mod collector;
pub mod config;
pub mod demo;
pub mod dns;
pub mod files;
pub mod gateway;
pub mod h2_wire;
pub mod logs;
pub mod memory;
pub mod packages;
pub mod process;
pub mod redis;
pub mod scrape;
pub mod upstream;
pub mod wait;

/// Paths of the plugin components this crate's build script produced.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

pub use client::{Client, KeepAlive, Reply};
pub use gateway::TestGateway;
pub use upstream::{Answer, Seen, TestUpstream, closed_port};
pub use wait::eventually;
