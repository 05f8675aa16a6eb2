//! The demo's backend services: small JSON APIs on fixed loopback ports,
//! the ones `configs/demo.toml` names as upstreams.

use serde_json::json;

use crate::upstream::{Answer, Seen, TestUpstream};

pub const USERS: &str = "127.0.0.1:9101";
pub const ORDERS: &str = "127.0.0.1:9102";
pub const PRODUCTS: &str = "127.0.0.1:9103";

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

pub async fn start_services() -> Services {
    Services {
        users: TestUpstream::start_on(USERS.parse().unwrap(), users).await,
        orders: TestUpstream::start_on(ORDERS.parse().unwrap(), orders).await,
        products: TestUpstream::start_on(PRODUCTS.parse().unwrap(), products).await,
    }
}
