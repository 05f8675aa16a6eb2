//! Runs the demo: the backend services and a gateway on `configs/demo.toml`
//! with the plugins this crate's build compiled.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use wasmgate::config::ConfigErrors;
use wasmgate::{Gateway, StartError, server};
use wasmgate_testbed::demo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml");
    let config = config.canonicalize().context("finding configs/demo.toml")?;

    let _services = demo::start_services().await;
    let gateway = match Gateway::load(&config).await {
        Ok(g) => Arc::new(g),
        Err(StartError::Config(ConfigErrors::Invalid(errors))) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!("the demo config is invalid");
        }
        Err(e) => return Err(e.into()),
    };
    let listen = gateway.snapshot().config.listen.clone();
    let running = server::serve(gateway, server::bind(&listen).await?);
    let addr = running.addrs[0];
    println!("\nwasmgate demo gateway on http://{addr}  (config: {})", config.display());
    println!("services: users {}, orders {}, products {}", demo::USERS, demo::ORDERS, demo::PRODUCTS);
    println!("try:");
    println!(
        "  curl -i http://{addr}/users/42            # add-header plugin: see x-gateway upstream, x-powered-by back"
    );
    println!("  curl -i http://{addr}/orders              # plain proxying");
    println!("  curl -i http://{addr}/nowhere             # 404 problem+json");
    println!("Ctrl-C to stop.\n");
    server::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}
