//! What operators see: `GET /metrics` after known traffic (exact counts,
//! read by a real Prometheus parser), the access log's JSON lines, W3C
//! trace context from the client through the upstream to the log, and the
//! admin token.

use http::Method;
use serde_json::{Value, json};
use wasmgate_testbed::config::{GatewayConfig, Route};
use wasmgate_testbed::plugins::{FIXTURE_SET_VAR, FIXTURE_SLEEPER, FIXTURE_TRAP, RATE_LIMIT};
use wasmgate_testbed::scrape::Scrape;
use wasmgate_testbed::{Answer, Client, TestGateway, TestUpstream, eventually};

const TOKEN: &str = "an-admin-token-0123456789";

async fn scrape(admin: &Client) -> Scrape {
    let reply = admin.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    Scrape::parse(&reply.text())
}

/// Routes for every kind of outcome: a plugin that continues, one that
/// traps, one that runs out of time, a fail-open pass, a rate limit, an
/// upstream nobody listens on.
fn config(up: &TestUpstream) -> GatewayConfig {
    let slow = json!({"spin": true, "only_with_header": "x-misbehave"});
    GatewayConfig::new()
        .upstream("up", up)
        // Port 1 refuses connections; one try, so the count is exact.
        .upstream_with("down", json!({"targets": ["127.0.0.1:1"], "retries": {"attempts": 1}}))
        .plugin_with("sleeper", FIXTURE_SLEEPER, json!({"timeout_ms": 20}))
        .plugin("trap", FIXTURE_TRAP)
        .plugin("rate-limit", RATE_LIMIT)
        .route(Route::path("ok", "/ok").upstream("up").stage("sleeper", slow.clone()))
        .route(Route::path("slow", "/slow").upstream("up").stage("sleeper", slow))
        .route(Route::path("trap", "/trap").upstream("up").stage("trap", Value::Null))
        .route(Route::path("open", "/open").upstream("up").stage_with("trap", json!({"on_error": "fail-open"})))
        .route(
            Route::path("limited", "/limited")
                .upstream("up")
                .stage("rate-limit", json!({"key": ["ip"], "limits": [{"limit": 1, "window": "1h", "burst": 1}]})),
        )
        .route(Route::path("down", "/down").upstream("down"))
}

/// The client gets one `traceparent`, the gateway's span that the upstream
/// was sent as its parent, over HTTP/1.1 and HTTP/2, even when the
/// upstream answers with one of its own.
#[tokio::test]
async fn the_response_names_the_gateways_span_over_either_protocol() {
    let upstreams = "00-11111111111111111111111111111111-2222222222222222-01";
    let up = TestUpstream::start(move |_| Answer::new(200, "ok").header("traceparent", upstreams)).await;
    let toml = GatewayConfig::new().upstream("up", &up).route(Route::path("users", "/users/{id}").upstream("up"));
    let gw = TestGateway::start(&toml.to_string()).await;
    for (i, client) in [gw.client.clone(), Client::http2(gw.addr)].into_iter().enumerate() {
        let reply = client.get("/users/1").await;
        assert_eq!(reply.status, 200);
        let sent: Vec<&str> = reply.headers.get_all("traceparent").iter().map(|v| v.to_str().unwrap()).collect();
        let parent = up.seen()[i].header("traceparent").expect("the upstream's parent").to_owned();
        assert_eq!(sent, [parent.as_str()], "request {i}");
        assert_eq!(&parent[3..35], reply.header("x-request-id").unwrap(), "a trace started here names the request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_traffic_is_counted_exactly() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let gw = TestGateway::start(&config(&up).to_string()).await;
    let c = &gw.client;
    let expect = [
        (c.get("/ok").await, 200),
        (c.get("/ok").await, 200),
        (c.send(Method::GET, "/slow", &[("x-misbehave", "1")], "").await, 500),
        (c.get("/trap").await, 500),
        (c.get("/open").await, 200),
        (c.get("/limited").await, 200),
        (c.get("/limited").await, 429),
        (c.get("/down").await, 502),
        (c.send(Method::from_bytes(b"PROPFIND").unwrap(), "/nowhere/1", &[], "").await, 404),
    ];
    for (i, (reply, status)) in expect.iter().enumerate() {
        assert_eq!(reply.status, *status, "request {i}: {}", reply.text());
    }

    let s = scrape(&gw.admin).await;
    let requests =
        |route, code| s.count("wasmgate_requests_total", &[("route", route), ("method", "GET"), ("code", code)]);
    assert_eq!(requests("ok", "200"), 2.0);
    assert_eq!(requests("slow", "500"), 1.0);
    assert_eq!(requests("trap", "500"), 1.0);
    assert_eq!(requests("open", "200"), 1.0);
    assert_eq!((requests("limited", "200"), requests("limited", "429")), (1.0, 1.0));
    assert_eq!(requests("down", "502"), 1.0);
    let unrouted = [("route", "(none)"), ("method", "other"), ("code", "404")];
    assert_eq!(s.count("wasmgate_requests_total", &unrouted), 1.0, "no raw path or method becomes a label");
    assert!(!s.text.contains("/nowhere") && !s.text.contains("PROPFIND"));
    let total: f64 = s.samples("wasmgate_requests_total").iter().map(|(_, v)| v).sum();
    assert_eq!(total, 9.0);
    assert_eq!(s.count("wasmgate_request_duration_seconds", &[("route", "ok")]), 2.0);
    assert_eq!(s.count("wasmgate_request_duration_seconds", &[("route", "(none)")]), 1.0);

    let calls = |plugin, route, result| {
        s.count(
            "wasmgate_plugin_calls_total",
            &[("plugin", plugin), ("route", route), ("phase", "request"), ("result", result)],
        )
    };
    assert_eq!(calls("sleeper", "ok", "continue"), 2.0);
    assert_eq!(calls("sleeper", "slow", "timeout"), 1.0);
    assert_eq!(calls("trap", "trap", "trap"), 1.0);
    assert_eq!(calls("trap", "open", "fail_open"), 1.0);
    assert_eq!((calls("rate-limit", "limited", "continue"), calls("rate-limit", "limited", "respond")), (1.0, 1.0));
    let plugin_calls: f64 = s.samples("wasmgate_plugin_calls_total").iter().map(|(_, v)| v).sum();
    assert_eq!(plugin_calls, 7.0);
    let durations = [("plugin", "sleeper"), ("route", "ok"), ("phase", "request")];
    assert_eq!(s.count("wasmgate_plugin_call_duration_seconds", &durations), 2.0);

    // A plugin's own metric, by plugin use.
    let refused = [("plugin", "rate-limit"), ("route", "limited")];
    assert_eq!(s.count("wasmgate_plugin_rate_limit_refused_total", &refused), 1.0);

    let target = up.target();
    let tries = |upstream, target: &str, outcome| {
        s.count("wasmgate_upstream_requests_total", &[("upstream", upstream), ("target", target), ("outcome", outcome)])
    };
    // /ok twice, /open, the first /limited.
    assert_eq!(tries("up", &target, "200"), 4.0);
    assert_eq!(tries("down", "127.0.0.1:1", "connect"), 1.0);
    assert_eq!(s.count("wasmgate_upstream_request_duration_seconds", &[("upstream", "up")]), 4.0);
    assert_eq!(s.count("wasmgate_upstream_retries_total", &[("upstream", "down")]), 0.0);
    let state =
        |state| s.value("wasmgate_upstream_target_state", &[("upstream", "up"), ("target", &target), ("state", state)]);
    assert_eq!((state("healthy"), state("ejected"), state("open")), (Some(1.0), Some(0.0), Some(0.0)));

    let instances = |route, state| {
        s.value("wasmgate_plugin_instances", &[("plugin", "sleeper"), ("route", route), ("state", state)])
    };
    assert_eq!(instances("ok", "busy"), Some(0.0), "no call in flight");
    assert!(instances("ok", "idle").is_some_and(|n| n >= 1.0));

    assert_eq!(s.value("wasmgate_config_generation", &[]), Some(1.0));
    assert_eq!(s.value("wasmgate_reloads_total", &[("result", "success")]), Some(0.0));
    assert!(s.value("process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));
    assert!(s.value("process_open_fds", &[]).is_some_and(|v| v > 0.0));
    assert!(s.value("process_start_time_seconds", &[]).is_some());
    assert!(s.value("process_cpu_seconds_total", &[]).is_some());

    // Two more connections, then two fewer (the client's own pool stays
    // as it is meanwhile).
    let listener = gw.addr.to_string();
    let open = || async { scrape(&gw.admin).await.value("wasmgate_open_connections", &[("listener", &listener)]) };
    let before = open().await.expect("the listener's gauge");
    let extra = [
        tokio::net::TcpStream::connect(gw.addr).await.unwrap(),
        tokio::net::TcpStream::connect(gw.addr).await.unwrap(),
    ];
    eventually("two more open connections", || async { open().await == Some(before + 2.0) }).await;
    drop(extra);
    eventually("back to as many as before", || async { open().await == Some(before) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_are_counted_and_the_generation_follows() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let gw = TestGateway::start(
        &GatewayConfig::new().upstream("up", &up).route(Route::path("a", "/a").upstream("up")).to_string(),
    )
    .await;
    let path = gw.config_dir().join("gateway.toml");
    let before = scrape(&gw.admin).await.value("wasmgate_last_reload_timestamp_seconds", &[]).unwrap();

    std::fs::write(
        &path,
        GatewayConfig::new().upstream("up", &up).route(Route::path("b", "/b").upstream("up")).to_string(),
    )
    .unwrap();
    assert_eq!(gw.admin.send(Method::POST, "/reload", &[], "").await.status, 200);
    std::fs::write(&path, "[[routes]]\nname = 3\n").unwrap();
    assert_eq!(gw.admin.send(Method::POST, "/reload", &[], "").await.status, 422);

    let s = scrape(&gw.admin).await;
    assert_eq!(s.value("wasmgate_reloads_total", &[("result", "success")]), Some(1.0));
    assert_eq!(s.value("wasmgate_reloads_total", &[("result", "failure")]), Some(1.0));
    assert_eq!(s.value("wasmgate_config_generation", &[]), Some(2.0));
    assert!(s.value("wasmgate_last_reload_timestamp_seconds", &[]).is_some_and(|t| t >= before));
    // The new route counts; the old one's series stay as they were.
    assert_eq!(gw.client.get("/b").await.status, 200);
    let s = scrape(&gw.admin).await;
    assert_eq!(s.count("wasmgate_requests_total", &[("route", "b"), ("method", "GET"), ("code", "200")]), 1.0);
}

/// Waits for `n` lines in the access log at `path`, and parses them.
async fn log_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    eventually("the access log has its lines", || async {
        std::fs::read_to_string(path).unwrap_or_default().lines().count() >= n
    })
    .await;
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_and_the_trace_id_agree_everywhere() {
    let up = TestUpstream::start(|_| Answer::new(201, "created!")).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let toml = GatewayConfig::new()
        .section("access_log", json!({"path": log.to_str().unwrap(), "format": "json"}))
        .upstream("up", &up)
        .plugin("set-var", FIXTURE_SET_VAR)
        .route(
            Route::path("users", "/users/{id}")
                .upstream("up")
                .stage("set-var", json!({"name": "user", "value": "alice"})),
        )
        .to_string();
    let gw = TestGateway::start(&toml).await;

    // A caller's trace is continued.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [("traceparent", parent), ("tracestate", "congo=t61rcWkgMzE"), ("user-agent", "probe/1.0")];
    let reply = gw.client.send(Method::POST, "/users/./7", &headers, "twelve bytes").await;
    assert_eq!(reply.status, 201);
    let sent = reply.header("traceparent").expect("the response names the gateway's span").to_owned();
    let fields: Vec<&str> = sent.split('-').collect();
    assert_eq!(fields.len(), 4, "{sent}");
    assert_eq!((fields[0], fields[1], fields[3]), ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01"));
    assert_ne!(fields[2], "00f067aa0ba902b7", "the gateway's own span");
    let seen = up.seen();
    assert_eq!(seen[0].header("traceparent"), Some(sent.as_str()), "the upstream's parent is the gateway's span");
    assert_eq!(seen[0].header("tracestate"), Some("congo=t61rcWkgMzE"));

    assert_ne!(
        reply.header("x-request-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "a continued trace's id is not the request's"
    );

    // No trace: one is started, the same everywhere, and its id is the request id.
    let started = gw.client.get("/users/8").await;
    let request_id = started.header("x-request-id").unwrap().to_owned();
    let started = started.header("traceparent").unwrap().to_owned();
    assert_ne!(&started[3..35], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(up.seen()[1].header("traceparent"), Some(started.as_str()));
    assert_eq!(&started[3..35], request_id, "the request id is the started trace's id");
    // And a route that does not exist is logged too.
    assert_eq!(gw.client.get("/elsewhere").await.status, 404);

    let lines = log_lines(&log, 3).await;
    let first = &lines[0];
    let request_id = reply.header("x-request-id").unwrap();
    assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(first["span_id"], fields[2]);
    assert_eq!(first["request_id"], request_id);
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{first}");
    assert!(first["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")));
    assert_eq!(first["method"], "POST");
    assert_eq!(first["host"], gw.addr.to_string());
    assert_eq!(first["path"], "/users/7", "normalised");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["route"], "users");
    assert_eq!(first["status"], 201);
    assert_eq!(first["bytes_in"], 12);
    assert_eq!(first["bytes_out"], 8);
    assert_eq!(first["upstream_target"], up.target());
    assert_eq!(first["upstream_status"], 201);
    assert_eq!(first["attempts"], 1);
    for key in ["duration_ms", "plugins_ms", "upstream_ms"] {
        assert!(first[key].as_f64().is_some_and(|ms| ms >= 0.0), "{key}: {first}");
    }
    assert!(first["duration_ms"].as_f64() >= first["upstream_ms"].as_f64());
    let plugin = &first["plugins"][0];
    assert_eq!(
        (&plugin["plugin"], &plugin["phase"], &plugin["result"]),
        (&json!("set-var"), &json!("request"), &json!("continue"))
    );
    assert!(plugin["duration_ms"].as_f64().is_some());
    assert_eq!(first["user"], "alice");
    assert_eq!(first["user_agent"], "probe/1.0");

    assert_eq!(lines[1]["trace_id"], started[3..35]);
    let unrouted = &lines[2];
    assert_eq!(
        (&unrouted["route"], &unrouted["status"], &unrouted["attempts"]),
        (&Value::Null, &json!(404), &json!(0))
    );
    assert_eq!(unrouted["upstream_target"], Value::Null);
    assert_eq!(unrouted["user"], Value::Null);

    let s = scrape(&gw.admin).await;
    assert_eq!(s.value("wasmgate_access_log_dropped_total", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_guards_everything_but_the_probes() {
    let toml = GatewayConfig::new().section("admin", json!({"token": TOKEN})).to_string();
    let gw = TestGateway::start(&toml).await;
    let bearer = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {TOKEN}x");
    for path in ["/metrics", "/status", "/nothing-here"] {
        for headers in [vec![], vec![("authorization", wrong.as_str())], vec![("authorization", TOKEN)]] {
            let reply = gw.admin.send(Method::GET, path, &headers, "").await;
            assert_eq!(
                reply.problem(401),
                "the admin API needs `Authorization: Bearer <token>` (or the token as a Basic password)",
                "{path} {headers:?}"
            );
            let challenge = reply.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer realm=\"wasmgate admin\", Basic "), "{challenge}");
        }
    }
    let reply = gw.admin.send(Method::POST, "/reload", &[], "").await;
    assert_eq!(reply.status, 401, "a reload needs it too");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(gw.admin.get(path).await.status, 200, "{path} stays open");
    }
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(gw.admin.send(Method::GET, "/status", &auth, "").await.status, 200);
    // A browser on the dashboard sends the token as a Basic password.
    let basic = {
        use base64::Engine as _;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("operator:{TOKEN}")))
    };
    assert_eq!(gw.admin.send(Method::GET, "/", &[("authorization", basic.as_str())], "").await.status, 200);
    assert_eq!(gw.admin.get("/").await.status, 401, "the dashboard needs the token too");
    let metrics = gw.admin.send(Method::GET, "/metrics", &auth, "").await;
    assert_eq!(metrics.status, 200);
    Scrape::parse(&metrics.text());
    assert_eq!(gw.admin.send(Method::POST, "/reload", &auth, "").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_logged_or_counted_as_dropped() {
    let up = TestUpstream::start(|_| Answer::new(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let toml = GatewayConfig::new()
        .section("access_log", json!({"path": log.to_str().unwrap()}))
        .upstream("up", &up)
        .route(Route::path("a", "/a").upstream("up"))
        .to_string();
    let gw = TestGateway::start(&toml).await;
    for _ in 0..50 {
        assert_eq!(gw.client.get("/a").await.status, 200);
    }
    eventually("every line is written or dropped", || async {
        let written = std::fs::read_to_string(&log).unwrap_or_default().lines().count() as f64;
        let dropped = scrape(&gw.admin).await.count("wasmgate_access_log_dropped_total", &[]);
        written + dropped == 50.0
    })
    .await;
}
