//! What the upstream layer sends and gets back: request bodies that can be
//! sent again, and response bodies that keep their target's in-flight count.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::retry::BodyReplay;
use super::roundtrip::Outgoing;
use crate::body::{Body, BodyError};

/// A request body as the upstream layer takes it.
pub(crate) enum Payload {
    /// In memory: can be sent as often as a retry needs.
    Bytes(Bytes),
    /// Streamed from the client: can only be sent again if nobody read it.
    Stream(Body),
}

impl Payload {
    /// A body of unknown origin: an empty one is as good as bytes.
    pub(crate) fn from_body(body: Body) -> Self {
        if body.is_end_stream() { Self::Bytes(Bytes::new()) } else { Self::Stream(body) }
    }
}

type Slot = Arc<Mutex<Option<Body>>>;

/// The request body across the tries of one request.
pub(crate) enum Replay {
    Bytes(Bytes),
    /// The stream, while it is here (not lent to a try).
    Stream(Option<Body>),
}

impl Replay {
    pub(crate) fn new(payload: Payload) -> Self {
        match payload {
            Payload::Bytes(b) => Self::Bytes(b),
            Payload::Stream(s) => Self::Stream(Some(s)),
        }
    }

    pub(crate) fn state(&self) -> BodyReplay {
        match self {
            Self::Bytes(_) => BodyReplay::InMemory,
            Self::Stream(Some(_)) => BodyReplay::Unread,
            Self::Stream(None) => BodyReplay::Gone,
        }
    }

    /// The body for the next try, and for a stream the place it can be taken
    /// back from if the try never read it. `None` when it is gone.
    pub(crate) fn lend(&mut self) -> Option<(Outgoing, Option<Slot>)> {
        match self {
            Self::Bytes(b) => Some((Outgoing::Bytes(b.clone()), None)),
            Self::Stream(stream) => {
                let slot: Slot = Arc::new(Mutex::new(Some(stream.take()?)));
                Some((Outgoing::Stream(Reclaimable { slot: slot.clone(), body: None }.boxed()), Some(slot)))
            }
        }
    }

    /// After a try that failed before sending anything: takes the stream
    /// back if it was never read.
    pub(crate) fn reclaim(&mut self, slot: Option<Slot>) {
        if let (Self::Stream(stream), Some(slot)) = (self, slot) {
            *stream = slot.lock().expect("body slot lock").take();
        }
    }
}

/// A body that stays in its slot until first polled, so that a try that
/// never touched it (no connection) leaves it for the next.
struct Reclaimable {
    slot: Slot,
    body: Option<Body>,
}

impl Reclaimable {
    fn boxed(self) -> Body {
        http_body_util::BodyExt::boxed(self)
    }

    fn peek<T>(&self, f: impl Fn(&Body) -> T, gone: T) -> T {
        match &self.body {
            Some(b) => f(b),
            None => self.slot.lock().expect("body slot lock").as_ref().map_or(gone, f),
        }
    }
}

impl HttpBody for Reclaimable {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.body.is_none() {
            this.body = this.slot.lock().expect("body slot lock").take();
        }
        match &mut this.body {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.peek(|b| b.is_end_stream(), true)
    }

    fn size_hint(&self) -> SizeHint {
        self.peek(|b| b.size_hint(), SizeHint::with_exact(0))
    }
}

/// A response body that keeps its target's in-flight count up until it is
/// read or dropped (for least-request balancing).
pub(crate) struct Tracked<G> {
    pub inner: Body,
    /// Held for its `Drop`.
    pub _guard: G,
}

impl<G: Send + Sync + Unpin + 'static> Tracked<G> {
    pub(crate) fn boxed(self) -> Body {
        http_body_util::BodyExt::boxed(self)
    }
}

impl<G: Unpin> HttpBody for Tracked<G> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn stream(text: &'static str) -> Body {
        let stream = futures_util::stream::iter([Ok::<_, BodyError>(Frame::data(Bytes::from(text)))]);
        http_body_util::StreamBody::new(stream).boxed()
    }

    #[test]
    fn empty_bodies_count_as_bytes() {
        assert!(matches!(Payload::from_body(crate::body::empty()), Payload::Bytes(b) if b.is_empty()));
        assert!(matches!(Payload::from_body(stream("x")), Payload::Stream(_)));
    }

    #[tokio::test]
    async fn an_unread_stream_comes_back_a_read_one_does_not() {
        let mut replay = Replay::new(Payload::Stream(stream("hello")));
        assert_eq!(replay.state(), BodyReplay::Unread);
        let (lent, slot) = replay.lend().unwrap();
        assert_eq!(replay.state(), BodyReplay::Gone, "lent out");
        drop(lent);
        replay.reclaim(slot);
        assert_eq!(replay.state(), BodyReplay::Unread, "never polled: back");

        let (Outgoing::Stream(lent), slot) = replay.lend().unwrap() else { panic!("a stream") };
        assert_eq!(lent.collect().await.unwrap().to_bytes(), "hello");
        replay.reclaim(slot);
        assert_eq!(replay.state(), BodyReplay::Gone);
        assert!(replay.lend().is_none());
    }

    #[tokio::test]
    async fn bytes_are_lent_again_and_again() {
        let mut replay = Replay::new(Payload::Bytes(Bytes::from_static(b"abc")));
        for _ in 0..3 {
            let (Outgoing::Bytes(lent), slot) = replay.lend().unwrap() else { panic!("bytes") };
            assert!(slot.is_none());
            assert_eq!(lent, "abc");
        }
        assert_eq!(replay.state(), BodyReplay::InMemory);
    }
}
