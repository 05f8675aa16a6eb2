//! A connection handed over after `101 Switching Protocols`, on either side
//! of the proxy, and the tunnel between two of them.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// Both directions of a connection no longer speaking HTTP, and the bytes
/// already read past the head that switched it.
pub(crate) struct Upgraded {
    pub(crate) read: Box<dyn AsyncRead + Send + Sync + Unpin>,
    pub(crate) write: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    pub(crate) leftover: Bytes,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("leftover", &self.leftover.len()).finish_non_exhaustive()
    }
}

/// In a message's extensions: its connection, once the `101` has been
/// written (the client's side) or read (the upstream's). Clones share it
/// (extensions must be `Clone`); one of them gets the connection.
#[derive(Debug, Clone)]
pub(crate) struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// For the side that hands the connection over later.
    pub(crate) fn pending() -> (oneshot::Sender<Upgraded>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(Arc::new(Mutex::new(Some(rx)))))
    }

    pub(crate) fn ready(upgraded: Upgraded) -> Self {
        let (tx, this) = Self::pending();
        let _ = tx.send(upgraded);
        this
    }

    /// `None` when the connection was not handed over after all.
    pub(crate) async fn get(self) -> Option<Upgraded> {
        let rx = self.0.lock().expect("upgrade lock").take()?;
        rx.await.ok()
    }
}

/// Copies bytes both ways until each side has finished sending; returns
/// the bytes sent from `a` to `b` and from `b` to `a`.
pub(crate) async fn tunnel(a: Upgraded, b: Upgraded) -> std::io::Result<(u64, u64)> {
    let Upgraded { read: a_read, write: mut a_write, leftover: a_left } = a;
    let Upgraded { read: b_read, write: mut b_write, leftover: b_left } = b;
    let forward = async {
        let n = tokio::io::copy(&mut Cursor::new(a_left).chain(a_read), &mut b_write).await?;
        b_write.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    let back = async {
        let n = tokio::io::copy(&mut Cursor::new(b_left).chain(b_read), &mut a_write).await?;
        a_write.shutdown().await?;
        Ok::<_, std::io::Error>(n)
    };
    tokio::try_join!(forward, back)
}
