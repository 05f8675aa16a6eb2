//! The demo's backend services: small JSON APIs on fixed loopback ports,
//! the ones `configs/demo.toml` names as upstreams.

use serde_json::json;

use crate::upstream::{Answer, Seen, TestUpstream};

pub const USERS: &str = "127.0.0.1:9101";
pub const ORDERS: &str = "127.0.0.1:9102";
pub const PRODUCTS: &str = "127.0.0.1:9103";

/// HS256 tokens for the demo's `jwt-auth` key (kid `demo`), valid until 2100:
/// user 42 with role `member`, and user 1 with role `admin`.
pub const TOKEN_MEMBER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8ifQ.eyJpc3MiOiJodHRwczovL2RlbW8ud2FzbWdhdGUudGVzdCIsInN1YiI6IjQyIiwicm9sZSI6Im1lbWJlciIsImV4cCI6NDEwMjQ0NDgwMH0.MKwNyvgJ7QmT-lzypntEFvvJZ6ZzQ7KYivf2d1vF3Rk";
pub const TOKEN_ADMIN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8ifQ.eyJpc3MiOiJodHRwczovL2RlbW8ud2FzbWdhdGUudGVzdCIsInN1YiI6IjEiLCJyb2xlIjoiYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDB9.xz50jesNiggUaRM0j7ozjF1qcurqXk1IqP4fyqpM-jQ";

/// The demo config, from the repository.
pub fn config_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml")
}

/// Headers a demo service reports back, to show what the gateway added.
const SHOWN: [&str; 5] = ["x-gateway", "x-request-id", "x-forwarded-for", "x-forwarded-host", "x-user-id"];

fn gateway_headers(seen: &Seen) -> serde_json::Value {
    SHOWN
        .iter()
        .filter_map(|h| seen.header(h).map(|v| (h.to_string(), json!(v))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn last_segment(seen: &Seen) -> String {
    let path = seen.uri.split('?').next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

fn users(seen: &Seen) -> Answer {
    let id = last_segment(seen);
    Answer::json(&json!({
        "id": id,
        "user_name": format!("user{id}"),
        "email": format!("user{id}@example.com"),
        "role": if id == "1" { "admin" } else { "member" },
        "seen_by_service": gateway_headers(seen),
    }))
}

fn orders(seen: &Seen) -> Answer {
    Answer::json(&json!({
        "orders": [
            {"order_id": "o-100", "product_id": "p-1", "quantity": 2},
            {"order_id": "o-101", "product_id": "p-7", "quantity": 1},
        ],
        "seen_by_service": gateway_headers(seen),
    }))
}

fn products(seen: &Seen) -> Answer {
    let id = last_segment(seen);
    Answer::json(&json!({
        "product_id": id,
        "title": format!("Product {id}"),
        "price_cents": 1999,
        "seen_by_service": gateway_headers(seen),
    }))
}

/// The running demo services; they stop when dropped.
pub struct Services {
    pub users: TestUpstream,
    pub orders: TestUpstream,
    pub products: TestUpstream,
}

/// Starts the services on the ports the demo config names.
pub async fn start_services() -> Services {
    Services::start_at([USERS, ORDERS, PRODUCTS].map(|a| a.parse().unwrap())).await
}

impl Services {
    /// Starts the services on the given addresses (users, orders, products);
    /// port 0 picks a free port.
    pub async fn start_at([u, o, p]: [std::net::SocketAddr; 3]) -> Self {
        Self {
            users: TestUpstream::start_on(u, users).await,
            orders: TestUpstream::start_on(o, orders).await,
            products: TestUpstream::start_on(p, products).await,
        }
    }
}
