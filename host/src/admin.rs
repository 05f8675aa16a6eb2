//! The operators' API, on its own listener: health, readiness, status of
//! the loaded config and its last reload, and a reload trigger.
//!
//! - `GET /healthz`: the process answers.
//! - `GET /readyz`: a snapshot is loaded and serving.
//! - `GET /status`: generation, last reload (time, cause, error), routes,
//!   plugins with content hashes, each plugin use (plugin on a route) with
//!   its warm instances and its breaker (state, times opened, calls
//!   short-circuited), upstream targets with their state (up, unhealthy,
//!   ejected, circuit-open), and beside it their health, ejection time
//!   left and breaker state, and requests in flight.
//! - `POST /reload`: reload now; 200 with the diff, or 422 problem+json
//!   with the errors, or 504 when it ran past `runtime.reload_timeout_ms`
//!   and was abandoned (either way the previous config keeps serving).

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::answer::Answer;
use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::reload::ReloadError;

pub async fn handle(gateway: Arc<Gateway>, req: Request<Body>, _client: SocketAddr) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text("ok\n"),
        (&Method::GET, "/readyz") => text("ready\n"),
        (&Method::GET, "/status") => json_response(StatusCode::OK, status(&gateway)),
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
        (_, "/healthz" | "/readyz" | "/status" | "/reload") => Answer::AdminMethod.into_response(),
        (_, path) => Answer::NoAdminEndpoint(path.to_owned()).into_response(),
    }
}

fn status(gateway: &Gateway) -> serde_json::Value {
    let snapshot = gateway.snapshot();
    let plugins: Vec<_> = snapshot
        .plugin_versions()
        .into_iter()
        .map(|(name, (hash, spec))| json!({"name": name, "hash": hash, "path": spec.path}))
        .collect();
    let routes: Vec<_> = snapshot.config.routes.iter().map(|r| &r.name).collect();
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
        "reload": gateway.reload_status(),
        "routes": routes,
        "plugins": plugins,
        "plugin_uses": plugin_uses,
        "upstreams": snapshot.upstreams.status(),
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
