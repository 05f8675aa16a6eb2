//! The operators' API, on its own listener: health, readiness, status of
//! the loaded config and its last reload, and a reload trigger.
//!
//! - `GET /healthz`: the process answers.
//! - `GET /readyz`: a snapshot is loaded and serving.
//! - `GET /`: the dashboard, a live read-only page drawn from `/status` and
//!   `/metrics` (assets embedded in the binary, see `dashboard`).
//! - `GET /status`: generation, last reload (time, cause, error) and the
//!   recent ones with their changes or errors, routes with their upstream,
//!   `plugins_dir`, plugins with content hashes, file and origin (`config`:
//!   an entry's path, `plugins_dir`, `plugins_dir+config`: the folder's
//!   file with an entry's settings), each plugin use (plugin on a route) with
//!   its warm instances and its breaker (state, times opened, calls
//!   short-circuited), upstream targets with their state (up, unhealthy,
//!   ejected, circuit-open) and requests in flight, and the key sources
//!   plugins fetch (jwt-auth's JWKS URLs) with their state (`key_sources`).
//! - `POST /reload`: reload now; 200 with the diff, or 422 problem+json
//!   with the errors, or 504 when it ran past `runtime.reload_timeout_ms`
//!   and was abandoned (either way the previous config keeps serving).

mod dashboard;
mod key_sources;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::answer::Answer;
use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::reload::ReloadError;
use crate::server::{self, Running};

/// Serves the admin API for `gateway` on `listeners`, until the returned
/// server is shut down.
pub fn serve_admin(gateway: Arc<Gateway>, listeners: Vec<TcpListener>) -> Running {
    server::serve_with(listeners, move |req, client| handle(gateway.clone(), req, client))
}

async fn handle(gateway: Arc<Gateway>, req: Request<Body>, _client: SocketAddr) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text("ok\n"),
        (&Method::GET, "/readyz") => text("ready\n"),
        (&Method::GET, "/status") => json_response(StatusCode::OK, status(&gateway).await),
        (&Method::POST, "/reload") => match gateway.reload("admin").await {
            Ok(diff) => json_response(
                StatusCode::OK,
                json!({"reloaded": true, "changes": diff.to_string(), "generation": gateway.reload_status().generation}),
            ),
            Err(error) => {
                let abandoned = matches!(error, ReloadError::Abandoned { .. });
                Answer::Reload { detail: error.to_string(), abandoned }.into_response()
            }
        },
        (&Method::GET, path) if let Some(asset) = dashboard::asset(path) => asset,
        (_, "/healthz" | "/readyz" | "/status" | "/reload" | "/" | "/dashboard.js" | "/dashboard.css") => {
            Answer::AdminMethod.into_response()
        }
        (_, path) => Answer::NoAdminEndpoint(path.to_owned()).into_response(),
    }
}

/// What `GET /status` answers: the loaded config, the last reload, plugins
/// and their uses, upstream targets, the state backend, and the key
/// sources plugins fetch (read from the state backend, hence async).
pub async fn status(gateway: &Gateway) -> serde_json::Value {
    let snapshot = gateway.snapshot();
    let key_sources = key_sources::status(&snapshot, gateway.state(), crate::clock::now_ms()).await;
    let plugins: Vec<_> = snapshot
        .plugin_versions()
        .into_iter()
        .map(|(name, (hash, spec))| json!({"name": name, "hash": hash, "path": spec.path, "origin": spec.origin}))
        .collect();
    let routes: Vec<_> = snapshot
        .routes
        .iter()
        .map(|r| json!({"name": &*r.name, "upstream": r.upstream.as_ref().map(|u| u.name())}))
        .collect();
    // Each plugin on each route: its own pool and breaker.
    let plugin_uses: Vec<_> = snapshot
        .routes
        .iter()
        .flat_map(|route| {
            route.pipeline.stages().iter().enumerate().map(|(position, stage)| {
                json!({
                    "route": &*route.name,
                    "position": position,
                    "plugin": &**stage.pool.plugin(),
                    "idle_instances": stage.pool.idle_instances(),
                    "breaker": stage.pool.breaker(),
                })
            })
        })
        .collect();
    json!({
        "config": snapshot.config.source,
        "plugins_dir": snapshot.config.plugins_dir,
        "reload": gateway.reload_status(),
        "routes": routes,
        "plugins": plugins,
        "plugin_uses": plugin_uses,
        "upstreams": snapshot.upstreams.status(),
        "state": gateway.state().status(),
        "key_sources": key_sources,
    })
}

fn text(s: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(s));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(body::full(serde_json::to_vec(&value).expect("JSON serialises")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
