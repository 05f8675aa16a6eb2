//! Accepting on one listener, within its connection limit: a connection
//! over the limit is closed as soon as it is accepted (the client sees the
//! connection end at once rather than wait in the backlog), and the limit
//! hit is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

/// A connection accepted within its listener's limit.
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub client: SocketAddr,
    pub tls: bool,
    /// Held for the connection's life.
    pub permit: OwnedSemaphorePermit,
}

/// Accepts on `listener` until aborted or the receiver is gone; `limit`
/// holds a permit per open connection.
pub(crate) fn spawn(
    listener: TcpListener,
    tls: bool,
    limit: Arc<Semaphore>,
    tx: mpsc::Sender<Accepted>,
) -> JoinHandle<()> {
    let max_connections = limit.available_permits();
    tokio::spawn(async move {
        let local = listener.local_addr().ok();
        let mut refused: u64 = 0;
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match limit.clone().try_acquire_owned() {
                Ok(permit) => {
                    if tx.send(Accepted { stream, client, tls, permit }).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(
                            listener = ?local,
                            max_connections,
                            refused,
                            "connection limit reached: closing new connections"
                        );
                    }
                    drop(stream);
                }
            }
        }
    })
}
