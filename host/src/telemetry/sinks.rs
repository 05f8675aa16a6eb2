//! Where a finished request record goes: the access log and the span
//! exporter, handed the record when the response body is done. Above the
//! record and both sinks, so neither has to know the other.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::access_log::AccessLog;
use super::otlp::Exporter;
use super::record::RequestRecord;
use super::spans;
use crate::body::{Body, BodyError};

/// Where a finished record goes: the access log, the span exporter (with
/// its sample ratio), or both.
#[derive(Clone, Default)]
pub(crate) struct Sinks {
    pub log: Option<Arc<AccessLog>>,
    pub spans: Option<(Arc<Exporter>, f64)>,
}

impl Sinks {
    /// Nothing wants the record: no body needs wrapping.
    pub(crate) fn is_empty(&self) -> bool {
        self.log.is_none() && self.spans.is_none()
    }
}

/// A response body that counts the bytes it hands out and, when it is
/// dropped (sent, or abandoned by a client that went away), finishes the
/// request's record: its access-log line is queued and its spans handed to
/// the exporter.
pub(crate) struct Logged {
    inner: Body,
    record: Option<Box<RequestRecord>>,
    sinks: Sinks,
}

impl Logged {
    pub(crate) fn wrap(inner: Body, record: Box<RequestRecord>, sinks: Sinks) -> Body {
        Self { inner, record: Some(record), sinks }.boxed()
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(record) = &mut self.record
        {
            record.bytes_out += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = record.start.elapsed();
            if let Some((exporter, ratio)) = &self.sinks.spans
                && spans::sampled(&record.trace, *ratio)
            {
                exporter.export(spans::of(&record));
            }
            if let Some(log) = &self.sinks.log {
                log.submit(record);
            }
        }
    }
}
