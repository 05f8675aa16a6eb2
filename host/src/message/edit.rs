//! Plugins' edits, as methods of the message they change: one edit sent
//! alone by an accessor (`set-header`), or a batch from `apply`, decoded
//! from the one buffer the plugin handed over (`wasmgate_sdk::edits`).
//!
//! Every value is untrusted: a field is checked through the instance's
//! [`NameCache`], the headers as a whole against the [`Bounds`] once, at
//! the end of a batch.

use bytes::Bytes;
use bytestring::ByteString;
use http::HeaderMap;
use wasmgate_sdk::edits::Op;

use super::bounds::{self, Bounds, FieldWriter};
use super::{EditKind, MessageError, NameCache, RequestState, ResponseState};

/// What a plugin hands over to change a message.
pub(crate) enum Edits {
    /// One edit, sent alone by an accessor.
    One(Op, Bytes, Bytes),
    /// An `apply` buffer: edits in order.
    Batch(Vec<u8>),
}

/// What the edits of one call share: the instance's name cache, its
/// bounds, and the writer that measures the headers once, at the end.
pub(crate) struct Editor<'a> {
    names: &'a mut NameCache,
    bounds: &'a Bounds,
    writer: FieldWriter<'a>,
}

/// A message plugins edit: the request or the response.
pub(crate) trait Edit {
    /// One edit, its headers measured by the editor's writer.
    fn edit_with(&mut self, ed: &mut Editor<'_>, op: Op, name: Bytes, value: Bytes) -> Result<(), MessageError>;

    /// The headers the edits change.
    fn headers(&self) -> &HeaderMap;

    /// Applies one edit or a batch, in order, then checks the headers
    /// against the limits.
    fn apply(&mut self, names: &mut NameCache, bounds: &Bounds, edits: Edits) -> Result<(), MessageError> {
        let mut ed = Editor { names, bounds, writer: bounds.writer() };
        match edits {
            Edits::One(op, name, value) => self.edit_with(&mut ed, op, name, value)?,
            Edits::Batch(buffer) => {
                each_edit(buffer, bounds, |op, name, value| self.edit_with(&mut ed, op, name, value))?
            }
        }
        ed.writer.finish(self.headers())
    }
}

impl Edit for RequestState {
    /// The name and value are shared bytes, so a header value or a var is
    /// never copied again.
    fn edit_with(&mut self, ed: &mut Editor<'_>, op: Op, name: Bytes, value: Bytes) -> Result<(), MessageError> {
        let Editor { names, bounds, writer } = ed;
        match op {
            // Vars stay writable in the response phase: they are scratch space.
            Op::SetVar => {
                let text = ByteString::try_from(name.clone());
                let name = text.map_err(|_| MessageError::VarName(bounds::shown(&String::from_utf8_lossy(&name))))?;
                let value = ByteString::try_from(value).map_err(|_| MessageError::VarValue(bounds::shown(&name)))?;
                self.set_var(name, value)?;
            }
            // Removing a name that cannot exist is nothing to fail over.
            Op::RemoveHeader => {
                let name = names.name(&name).ok();
                let req = self.writable()?;
                if let Some(name) = name {
                    writer.remove(&mut req.head.headers, &name);
                }
            }
            Op::SetHeader | Op::AppendHeader | Op::SetResponseHeader | Op::AppendResponseHeader => {
                let (name, value) = names.field(&name, value)?;
                let req = self.writable()?;
                match op {
                    Op::SetHeader => writer.set(&mut req.head.headers, name, value)?,
                    Op::AppendHeader => writer.append(&mut req.head.headers, name, value)?,
                    Op::SetResponseHeader => req.response_edits.push(EditKind::Set, name, value, bounds)?,
                    _ => req.response_edits.push(EditKind::Append, name, value, bounds)?,
                }
            }
        }
        Ok(())
    }

    fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }
}

impl Edit for ResponseState {
    /// Header edits only: vars and response headers belong to the request.
    fn edit_with(&mut self, ed: &mut Editor<'_>, op: Op, name: Bytes, value: Bytes) -> Result<(), MessageError> {
        let Editor { names, writer, .. } = ed;
        let name = &name[..];
        let headers = &mut self.head.headers;
        match op {
            Op::RemoveHeader => {
                if let Ok(name) = names.name(name) {
                    writer.remove(headers, &name);
                }
            }
            Op::SetHeader => {
                let (name, value) = names.field(name, value)?;
                writer.set(headers, name, value)?;
            }
            Op::AppendHeader => {
                let (name, value) = names.field(name, value)?;
                if let Some(value) = super::vary::to_append(headers, &name, value) {
                    writer.append(headers, name, value)?;
                }
            }
            Op::SetResponseHeader | Op::AppendResponseHeader | Op::SetVar => {
                return Err(MessageError::NotResponseEdit);
            }
        }
        Ok(())
    }

    fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }
}

/// Runs `f` on each edit of an `apply` buffer, in order: its name as the
/// bytes sent (checked where it is used: as a header name or a var name),
/// its value a slice of the one shared buffer.
fn each_edit(
    edits: Vec<u8>,
    bounds: &Bounds,
    mut f: impl FnMut(Op, Bytes, Bytes) -> Result<(), MessageError>,
) -> Result<(), MessageError> {
    if edits.is_empty() {
        return Ok(());
    }
    bounds.check_edits(edits.len())?;
    let shared = Bytes::from(edits);
    for edit in wasmgate_sdk::edits::decode(&shared) {
        let edit = edit.map_err(|e| MessageError::Edits(e.0))?;
        f(edit.op, shared.slice_ref(edit.name), shared.slice(edit.value_at..edit.value_at + edit.value.len()))?;
    }
    Ok(())
}
