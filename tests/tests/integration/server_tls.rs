//! TLS termination and HTTP/2: real TLS clients trusting a CA made for the
//! test, ALPN, h2c with prior knowledge, curl, certificates re-read on
//! reload.

use std::time::Duration;

use crate::server_common::{BOUND, Pki, TlsGateway, closed_while_trickling, raw, tls_get};
use tokio::net::TcpStream;
use wasmgate_testbed::{Client, TestGateway, TestUpstream};

fn proxy_to(up: &TestUpstream) -> String {
    format!(
        "[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
        up.target()
    )
}

#[tokio::test]
async fn https_in_http1_and_http2_chosen_by_alpn() {
    let up = TestUpstream::named("up").await;
    let pki = Pki::new("test CA");
    let gw = TlsGateway::start(&pki, "", &proxy_to(&up)).await;

    let h1 = tls_get(gw.tls, &pki.connector(&[b"http/1.1"]), "/one?x=1").await.unwrap();
    assert_eq!((h1.status, h1.version, h1.body.as_str()), (200, http::Version::HTTP_11, "up GET /one?x=1"));
    let h2 = tls_get(gw.tls, &pki.connector(&[b"h2", b"http/1.1"]), "/two").await.unwrap();
    assert_eq!((h2.status, h2.version, h2.body.as_str()), (200, http::Version::HTTP_2, "up GET /two"));
    // No ALPN at all: HTTP/1.1.
    let plain = tls_get(gw.tls, &pki.connector(&[]), "/three").await.unwrap();
    assert_eq!(plain.status, 200);

    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.header("x-forwarded-proto") == Some("https")), "{seen:?}");
    assert_eq!(seen[1].header("host"), Some(format!("localhost:{}", gw.tls.port()).as_str()));

    // The plaintext listener still speaks plaintext, and says so upstream.
    assert_eq!(Client::new(gw.plain).get("/four").await.status, 200);
    assert_eq!(up.seen()[3].header("x-forwarded-proto"), Some("http"));

    // A client that does not trust the CA fails the handshake.
    let other = Pki::new("another CA");
    let err = tls_get(gw.tls, &other.connector(&[b"h2"]), "/").await.unwrap_err();
    assert!(err.contains("TLS handshake"), "{err}");
    assert_eq!(up.count(), 4);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge_unless_turned_off() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&proxy_to(&up)).await;
    let reply = Client::http2(gw.addr).get("/h2c").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "up GET /h2c"));

    let off = TestGateway::start(&format!("[server]\nh2c = false\n{}", proxy_to(&up))).await;
    let reply = raw(off.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    // hyper's HTTP/1 server recognises the preface and closes at once.
    assert!(reply.closed);
    assert!(reply.text.is_empty() || reply.text.starts_with("HTTP/1.1 "), "no HTTP/2 frames: {:?}", reply.text);
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn curl_speaks_http2_over_tls_and_h2c() {
    let curl = std::path::Path::new("/usr/bin/curl");
    if !curl.exists() {
        println!("note: /usr/bin/curl is absent; skipping the curl checks");
        return;
    }
    let up = TestUpstream::named("up").await;
    let pki = Pki::new("curl CA");
    let gw = TlsGateway::start(&pki, "", &proxy_to(&up)).await;
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(curl).args(&args).output().await.expect("running curl");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let port = gw.tls.port();
    let ca = gw.dir.path().join("ca.pem").display().to_string();
    let tls = run(vec![
        "-sS".into(),
        "--http2".into(),
        "--cacert".into(),
        ca,
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        "-w".into(),
        " %{http_version} %{http_code}".into(),
        format!("https://localhost:{port}/curl-tls"),
    ])
    .await;
    assert_eq!(tls, "up GET /curl-tls 2 200");
    let h2c = run(vec![
        "-sS".into(),
        "--http2-prior-knowledge".into(),
        "-w".into(),
        " %{http_version} %{http_code}".into(),
        format!("http://{}/curl-h2c", gw.plain),
    ])
    .await;
    assert_eq!(h2c, "up GET /curl-h2c 2 200");
    gw.running.shutdown().await;
}

#[tokio::test]
async fn certificates_are_read_again_on_reload() {
    let up = TestUpstream::named("up").await;
    let first = Pki::new("first CA");
    let gw = TlsGateway::start(&first, "", &proxy_to(&up)).await;
    assert_eq!(tls_get(gw.tls, &first.connector(&[b"h2"]), "/").await.unwrap().status, 200);

    let second = Pki::new("second CA");
    second.write(gw.dir.path());
    gw.gateway.reload("test").await.expect("the new certificate loads");
    assert_eq!(tls_get(gw.tls, &second.connector(&[b"h2"]), "/").await.unwrap().status, 200);
    let err = tls_get(gw.tls, &first.connector(&[b"h2"]), "/").await.unwrap_err();
    assert!(err.contains("TLS handshake"), "the old certificate is gone: {err}");

    // A broken key fails the reload and the last good certificate stays.
    std::fs::write(gw.dir.path().join("key.pem"), "not a key").unwrap();
    let errors = gw.gateway.reload("test").await.expect_err("a bad key fails the reload").to_string();
    assert!(errors.contains("server.tls"), "{errors}");
    assert_eq!(tls_get(gw.tls, &second.connector(&[b"h2"]), "/").await.unwrap().status, 200);
    gw.running.shutdown().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    let pki = Pki::new("test CA");
    let up = TestUpstream::named("up").await;
    let gw = TlsGateway::start(&pki, "header_read_timeout_ms = 300", &proxy_to(&up)).await;
    let mut silent = TcpStream::connect(gw.tls).await.unwrap();
    assert!(
        closed_while_trickling(&mut silent, b"", Duration::from_millis(50)).await,
        "a client that never finishes its handshake is disconnected within {BOUND:?}"
    );
    gw.running.shutdown().await;
}

#[tokio::test]
async fn tls_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        match wasmgate::load_config(&path) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors().iter().map(ToString::to_string).collect::<Vec<_>>(),
        }
    };
    let e = check("[server]\ntls_listen = [\"127.0.0.1:0\"]\n");
    assert!(e.len() == 1 && e[0].contains("server.tls_listen: TLS listeners need [server.tls]"), "{e:?}");
    let e = check("[server.tls]\ncert = \"missing.pem\"\nkey = \"missing.pem\"\n");
    assert!(e.iter().any(|e| e.contains("server.tls: cannot read certificates from")), "{e:?}");
    assert!(e.iter().any(|e| e.contains("no TLS listener uses it")), "{e:?}");
    let e = check("[server]\nmax_headers = 0\nidle_timeout_ms = 0\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("server.max_headers: must be greater than 0"), "{e:?}");
}
