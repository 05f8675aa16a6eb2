//! The one body type that flows through the gateway.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error of a [`Body`]. A named type rather than a bare boxed trait
/// object: hyper's client asks for `Into<BoxError>`, which a boxed trait
/// object only satisfies for one lifetime, and that breaks the `Send`
/// proofs of every future that holds a body.
#[derive(Debug)]
pub struct BodyError(BoxError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Request and response bodies, streamed or buffered.
pub type Body = BoxBody<Bytes, BodyError>;

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body with no bytes.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// Any body whose errors can be boxed, e.g. hyper's `Incoming`.
pub(crate) fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(|e| BodyError(e.into())).boxed()
}

/// Why a body could not be buffered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    #[error("body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body could not be read: {0}")]
    Read(BoxError),
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn collect(body: Body, limit: usize) -> Result<Bytes, CollectError> {
    Ok(collect_with_trailers(body, limit).await?.0)
}

/// Reads a whole body and the trailers after it (none: an empty map),
/// refusing more than `limit` bytes of body.
pub(crate) async fn collect_with_trailers(body: Body, limit: usize) -> Result<(Bytes, HeaderMap), CollectError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(mut collected) => {
            let trailers = collected.trailers().cloned().unwrap_or_default();
            Ok((std::mem::take(&mut collected).to_bytes(), trailers))
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(CollectError::TooLarge { limit }),
        Err(e) => Err(CollectError::Read(e)),
    }
}

/// A body of these bytes followed by these trailers (none when empty).
/// Of no announced length, so that an HTTP/1.1 peer gets it chunked, the
/// one framing that carries trailers (the server sends a body whose length
/// is known with `Content-Length`).
pub(crate) fn full_with_trailers(bytes: Bytes, trailers: HeaderMap) -> Body {
    if trailers.is_empty() {
        return full(bytes);
    }
    let frames = [Ok(Frame::data(bytes)), Ok(Frame::trailers(trailers))];
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}
