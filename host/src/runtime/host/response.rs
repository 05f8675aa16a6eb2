//! `types.response`: the lent response, read and edited by the plugin.

use bytes::Bytes;
use wasmgate_sdk::edits::Op;
use wasmtime::component::Resource;

use crate::message::bounds;
use crate::message::{Edits, Headers};
use crate::runtime::bindings::types;
use crate::runtime::instance::{InstanceState, ResponseHandle};

impl types::HostResponse for InstanceState {
    fn status(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<u16> {
        Ok(self.response(&r)?.head.status.as_u16())
    }

    fn set_status(&mut self, r: Resource<ResponseHandle>, status: u16) -> wasmtime::Result<()> {
        let status = bounds::final_status(status)?;
        self.response_mut(&r)?.head.status = status;
        Ok(())
    }

    header_accessors!(ResponseHandle, response, edit_response);

    fn apply(&mut self, r: Resource<ResponseHandle>, edits: Vec<u8>) -> wasmtime::Result<()> {
        self.edit_response(&r, Edits::Batch(edits))
    }

    fn body(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.response(&r)?.body.as_ref().map(|b| b.to_vec()))
    }

    fn set_body(&mut self, r: Resource<ResponseHandle>, body: Vec<u8>) -> wasmtime::Result<()> {
        self.response_mut(&r)?.body = Some(body.into());
        Ok(())
    }

    fn trailer(&mut self, r: Resource<ResponseHandle>, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(Headers::first(&self.response(&r)?.trailers, &name))
    }

    fn trailers(&mut self, r: Resource<ResponseHandle>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        Ok(Headers::list(&self.response(&r)?.trailers))
    }

    fn set_trailers(&mut self, r: Resource<ResponseHandle>, trailers: Vec<(String, Vec<u8>)>) -> wasmtime::Result<()> {
        let bounds = self.bounds;
        Ok(self.response_mut(&r)?.set_trailers(trailers, &bounds)?)
    }

    fn drop(&mut self, _r: Resource<ResponseHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}
