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
//!   ejected, circuit-open), and beside it their health, ejection time
//!   left and breaker state, and requests in flight; and the key sources
//!   plugins fetch (jwt-auth's JWKS URLs) with their state (`key_sources`).
//! - `POST /reload`: reload now; 200 with the diff, or 422 problem+json
//!   with the errors, or 504 when it ran past `runtime.reload_timeout_ms`
//!   and was abandoned (either way the previous config keeps serving).
//! - `GET /metrics`: the Prometheus registry, text format 0.0.4.
//! - `DELETE /state/<plugin>?prefix=<prefix>`: drops the plugin's state
//!   entries (values, rate-limit cells, counters) whose key starts with
//!   `prefix` (percent-encoded; empty or absent: all of them), in local
//!   memory or Redis: 200 with `deleted` and `complete` (false when a Redis
//!   scan stopped at its time bound: purge again). How the cache plugin
//!   purges responses; `<plugin>` is the name `/status` lists.
//!
//! With `[admin] token` set, every endpoint but the two probes needs
//! `Authorization: Bearer <token>`: 401 problem+json otherwise. Probes
//! stay open because orchestrators call them without credentials.

mod dashboard;
mod key_sources;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::answer::Answer;
use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::message::bounds::MAX_STATE_KEY_BYTES;
use crate::reload::ReloadError;
use crate::server::{self, Running};
use crate::telemetry::metrics;
use subtle::ConstantTimeEq as _;

/// Serves the admin API for `gateway` on `listeners`, until the returned
/// server is shut down.
pub fn serve_admin(gateway: Arc<Gateway>, listeners: Vec<TcpListener>) -> Running {
    server::serve_with(listeners, move |req, client| handle(gateway.clone(), req, client))
}

async fn handle(gateway: Arc<Gateway>, req: Request<Body>, _client: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz")
        && let Some(token) = &gateway.snapshot().config.admin_token
        && !token_matches(req.headers().get(AUTHORIZATION), token)
    {
        return Answer::AdminUnauthorized.into_response();
    }
    match (req.method(), path) {
        (&Method::GET, "/healthz") => text("ok\n"),
        (&Method::GET, "/readyz") => text("ready\n"),
        (&Method::GET, "/metrics") => {
            let mut resp = Response::new(body::full(gateway.telemetry().render()));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
            resp
        }
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
        (&Method::DELETE, path) if let Some(plugin) = path.strip_prefix("/state/") => {
            match purge(&gateway, plugin, req.uri().query()).await {
                Ok(purged) => json_response(StatusCode::OK, purged),
                Err(answer) => answer.into_response(),
            }
        }
        (&Method::GET, path) if let Some(asset) = dashboard::asset(path) => asset,
        (_, "/healthz" | "/readyz" | "/status" | "/reload" | "/metrics" | "/" | "/dashboard.js" | "/dashboard.css") => {
            Answer::AdminMethod.into_response()
        }
        (_, path) if path.starts_with("/state/") => Answer::AdminMethod.into_response(),
        (_, path) => Answer::NoAdminEndpoint(path.to_owned()).into_response(),
    }
}

/// `DELETE /state/<plugin>?prefix=`: the plugin's namespace, as the
/// `state` import makes it, then the prefix.
async fn purge(gateway: &Gateway, plugin: &str, query: Option<&str>) -> Result<serde_json::Value, Answer> {
    if !gateway.snapshot().plugin_versions().contains_key(plugin) {
        return Err(Answer::NoSuchPlugin(plugin.to_owned()));
    }
    let mut prefix = String::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "prefix" => prefix = value.into_owned(),
            other => return Err(Answer::AdminBadRequest(format!("unknown parameter {other:?}: only `prefix` is"))),
        }
    }
    if prefix.len() > MAX_STATE_KEY_BYTES {
        return Err(Answer::AdminBadRequest(format!("a prefix takes at most {MAX_STATE_KEY_BYTES} bytes")));
    }
    let namespaced = format!("{}{prefix}", crate::state::namespace(plugin));
    let purged = gateway.state().purge(&namespaced).await.map_err(|e| Answer::PurgeFailed {
        unavailable: matches!(e, crate::state::StateError::Unavailable(_)),
        detail: e.to_string(),
    })?;
    tracing::info!(plugin, prefix, deleted = purged.deleted, complete = purged.complete, "state purged");
    Ok(json!({"plugin": plugin, "prefix": prefix, "deleted": purged.deleted, "complete": purged.complete}))
}

/// Whether `Authorization` carries the token: `Bearer <token>` for API
/// clients, or `Basic` with the token as the password (any user name) for
/// the dashboard in a browser, which asks for it once and then sends it
/// with every request of the page. The comparison takes the same time
/// wherever the first difference is, so response times do not reveal how
/// much of a guess was right (the length is not secret: the config bounds
/// it anyway).
fn token_matches(header: Option<&HeaderValue>, token: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = header.map(HeaderValue::as_bytes) else {
        return false;
    };
    let same = |given: &[u8]| given.len() == token.len() && bool::from(given.ct_eq(token.as_bytes()));
    if let Some(given) = value.strip_prefix(b"Bearer ") {
        return same(given);
    }
    let Some(encoded) = value.strip_prefix(b"Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    decoded.iter().position(|&b| b == b':').is_some_and(|colon| same(&decoded[colon + 1..]))
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
                    "calls": stage.pool.call_path(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches_as_bearer_or_basic_password() {
        let token = "0123456789abcdef";
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(token_matches(Some(&header("Bearer 0123456789abcdef")), token));
        for wrong in [
            "Bearer 0123456789abcdeF",
            "Bearer 0123456789abcde",
            "Bearer 0123456789abcdef0",
            "bearer 0123456789abcdef",
            "Basic 0123456789abcdef",
            "Bearer  0123456789abcdef",
            "0123456789abcdef",
            "Bearer ",
        ] {
            assert!(!token_matches(Some(&header(wrong)), token), "{wrong:?}");
        }
        assert!(!token_matches(None, token));
        // Basic, the token as the password, for browsers.
        let basic = |credentials: &str| {
            use base64::Engine as _;
            header(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials)))
        };
        assert!(token_matches(Some(&basic("admin:0123456789abcdef")), token));
        assert!(token_matches(Some(&basic(":0123456789abcdef")), token));
        for wrong in ["admin:0123456789abcdeF", "0123456789abcdef", "admin:", "0123456789abcdef:x"] {
            assert!(!token_matches(Some(&basic(wrong)), token), "{wrong:?}");
        }
        assert!(!token_matches(Some(&header("Basic !!!not-base64")), token));
    }
}
