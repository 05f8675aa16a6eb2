//! HTTP/2 floods cost the gateway no lasting memory: round after round of
//! connections sending endless header blocks (CONTINUATION floods, with
//! full frames) and streams opened and reset in a loop (rapid reset) are
//! closed, and RSS stays level. (Its own test binary: RSS is per process.)

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wasmgate_testbed::h2_wire::{self, CONTINUATION};
use wasmgate_testbed::memory::rss_bytes;
use wasmgate_testbed::{Client, TestGateway, TestUpstream};

const CONNECTIONS: usize = 40;
const ROUNDS: usize = 8;
/// How much RSS may grow from the first round to the last; each round
/// would keep several hundred MiB if the header blocks were held.
const BOUND: u64 = 24 << 20;

/// Sends `first`, then `next` until the gateway stops taking bytes (at
/// most `times` times, 16 MiB of `next` at least); whether it then closed
/// the connection.
async fn flood(addr: SocketAddr, first: Vec<u8>, next: Vec<u8>, times: usize) -> bool {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let mut sent = stream.write_all(&[h2_wire::preface(), first].concat()).await.is_ok();
    for _ in 0..times {
        if !sent {
            break;
        }
        sent = stream.write_all(&next).await.is_ok();
    }
    tokio::time::timeout(Duration::from_secs(15), h2_wire::read_to_close(&mut stream)).await.is_ok()
}

async fn round(addr: SocketAddr) {
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let block = h2_wire::continuation_flood(0);
                let full = h2_wire::frame(CONTINUATION, 0, 1, &[0x40; 16_000]);
                flood(addr, block, full, 1_000).await
            } else {
                flood(addr, h2_wire::rapid_reset(2_000), Vec::new(), 0).await
            }
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap(), "the gateway closed the flooding connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_leave_memory_level() {
    let up = TestUpstream::named("up").await;
    let gw = TestGateway::start(&format!(
        "[upstreams.up]\ntargets = [\"{}\"]\n\n[[routes]]\nname = \"all\"\nprefix = \"/\"\nupstream = \"up\"\n",
        up.target()
    ))
    .await;
    let h2 = Client::http2(gw.addr);
    assert_eq!(h2.get("/").await.status, 200);

    round(gw.addr).await;
    let first = rss_bytes();
    let mut samples = vec![first >> 20];
    for _ in 1..ROUNDS {
        round(gw.addr).await;
        samples.push(rss_bytes() >> 20);
    }
    eprintln!("RSS after each round of {CONNECTIONS} flooding connections: {samples:?} MiB");
    let growth = rss_bytes().saturating_sub(first);
    assert!(growth < BOUND, "RSS grew by {} MiB over {ROUNDS} rounds: {samples:?}", growth >> 20);
    assert_eq!(h2.get("/").await.status, 200, "still serving");
}
