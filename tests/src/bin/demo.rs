//! Runs the demo: the backend services and a gateway on `configs/demo.toml`
//! with the plugins this crate's build compiled.

use std::sync::Arc;

use anyhow::Context as _;
use wasmgate::{ConfigErrors, Gateway, StartError};
use wasmgate_testbed::demo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = demo::config_path().canonicalize().context("finding configs/demo.toml")?;

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
    let served = gateway.config();
    let running = wasmgate::serve(gateway.clone(), wasmgate::bind(&served.listen).await?);
    let admin_addr = served.admin_listen.context("the demo config has an admin listener")?;
    let admin = wasmgate::serve_admin(gateway.clone(), wasmgate::bind(&[admin_addr]).await?);
    let _watcher = wasmgate::watch(gateway.clone())?;
    let (addr, admin_addr) = (running.addrs[0], admin.addrs[0]);
    let (member, admin_token) = (demo::TOKEN_MEMBER, demo::TOKEN_ADMIN);
    println!(
        r#"
wasmgate demo gateway on http://{addr}   admin API on http://{admin_addr}
config: {config}   (edit it, or a plugin in its plugins_dir target/demo-plugins, and it reloads)
services: users {users}, orders {orders}, products {products}

MEMBER={member}
ADMIN={admin_token}

  curl -i http://{addr}/users/42                                        # 401: jwt-auth wants a token
  curl -i -X OPTIONS -H "Origin: http://localhost:3000" -H "Access-Control-Request-Method: GET" http://{addr}/users/42   # 204: cors preflight, no token
  curl -i -H "Authorization: Bearer $MEMBER" http://{addr}/users/42     # transform: userName, request_id; rate-limit headers
  curl -i -H "Authorization: Bearer $MEMBER" -H "x-client: mobile" http://{addr}/users/42   # the mobile shape
  for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w "%{{http_code}} " -H "Authorization: Bearer $MEMBER" http://{addr}/users/42; done   # 429 after 5/s
  curl -i -H "Authorization: Bearer $ADMIN" http://{addr}/users/7/dashboard   # aggregate: user + orders + products
  curl -i http://{addr}/products/p-1                                    # add-header, cache: X-Cache MISS, then HIT for 10 s
  curl -i http://{addr}/nowhere                                         # 404 problem+json
  curl -s http://{admin_addr}/status                                    # routes, plugins and where each came from, last reload

Ctrl-C to stop.
"#,
        config = config.display(),
        users = demo::USERS,
        orders = demo::ORDERS,
        products = demo::PRODUCTS,
    );
    wasmgate::shutdown_signal().await;
    admin.shutdown().await;
    running.shutdown().await;
    Ok(())
}
