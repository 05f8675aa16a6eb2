//! A nameserver on `127.0.0.1:0` (UDP) that answers A and AAAA queries
//! from a table the test changes while the gateway runs, and counts the
//! queries it gets. A name missing from the table is answered NXDOMAIN.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// The TTL of every answer: long, so re-resolution follows the gateway's
/// own interval, not the record's.
const TTL: u32 = 300;

#[derive(Default)]
struct Zone {
    addrs: HashMap<String, Vec<IpAddr>>,
    queries: HashMap<String, usize>,
}

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("binding the test nameserver");
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let task = tokio::spawn(serve(socket, zone.clone()));
        Self { addr, zone, task }
    }

    /// `name` resolves to `addrs` from now on.
    pub fn set(&self, name: &str, addrs: &[&str]) {
        let addrs = addrs.iter().map(|a| a.parse().expect("an IP address")).collect();
        self.zone.lock().unwrap().addrs.insert(name.to_owned(), addrs);
    }

    /// `name` does not exist from now on (NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().addrs.remove(name);
    }

    /// Queries for `name` so far (each record type counts).
    pub fn queries(&self, name: &str) -> usize {
        self.zone.lock().unwrap().queries.get(name).copied().unwrap_or(0)
    }

    /// The `[dns]` section pointing a gateway at this nameserver.
    pub fn section(&self) -> String {
        format!("[dns]\nnameservers = [\"{}\"]\n", self.addr)
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else { continue };
        let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
        let reply = answer(&query, &mut zone.lock().unwrap());
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

/// The reply to `query`.
fn answer(query: &Message, zone: &mut Zone) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    for q in &query.queries {
        let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        *zone.queries.entry(name.clone()).or_default() += 1;
        reply.add_query(q.clone());
        let Some(addrs) = zone.addrs.get(&name) else {
            reply.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        for ip in addrs {
            let rdata = match (ip, q.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
        }
    }
    reply
}
