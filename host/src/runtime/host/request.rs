//! `types.request`: the lent request, read and edited by the plugin.

use bytes::Bytes;
use wasmgate_sdk::edits::Op;
use wasmtime::component::Resource;

use crate::message::bounds;
use crate::message::{Edits, Headers};
use crate::runtime::bindings::types;
use crate::runtime::instance::{InstanceState, RequestHandle};
use crate::runtime::prefetch;

impl types::Host for InstanceState {}

impl types::HostRequest for InstanceState {
    fn method(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.head.method.as_str().to_owned())
    }

    fn set_method(&mut self, r: Resource<RequestHandle>, method: String) -> wasmtime::Result<()> {
        let parsed = bounds::method(&method)?;
        self.request_mut(&r)?.head.method = parsed;
        Ok(())
    }

    fn path(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.path().to_owned())
    }

    fn set_path(&mut self, r: Resource<RequestHandle>, path: String) -> wasmtime::Result<()> {
        let bounds = self.bounds;
        let req = self.request_mut(&r)?;
        let query = req.query().map(str::to_owned);
        req.set_path_and_query(&path, query.as_deref(), &bounds)?;
        Ok(())
    }

    fn query(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.query().map(str::to_owned))
    }

    fn set_query(&mut self, r: Resource<RequestHandle>, query: Option<String>) -> wasmtime::Result<()> {
        let bounds = self.bounds;
        let req = self.request_mut(&r)?;
        let path = req.path().to_owned();
        req.set_path_and_query(&path, query.as_deref(), &bounds)?;
        Ok(())
    }

    header_accessors!(RequestHandle, request, edit_request);

    fn body(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.request(&r)?.body.as_ref().map(|b| b.to_vec()))
    }

    fn set_body(&mut self, r: Resource<RequestHandle>, body: Vec<u8>) -> wasmtime::Result<()> {
        self.bounds.check_body(body.len() as u64)?;
        self.request_mut(&r)?.body = Some(body.into());
        Ok(())
    }

    fn route(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.info.route.to_string())
    }

    fn param(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Option<String>> {
        let info = &self.request(&r)?.info;
        Ok(info.params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
    }

    fn params(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.request(&r)?.info.params.clone())
    }

    fn client_addr(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        let mut buf = [0; 64];
        Ok(String::from_utf8_lossy(prefetch::client_addr(&mut buf, self.request(&r)?.info.client_addr)).into_owned())
    }

    fn request_id(&mut self, r: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(String::from_utf8_lossy(self.request(&r)?.info.request_id.as_bytes()).into_owned())
    }

    fn get_var(&mut self, r: Resource<RequestHandle>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.var(&name).map(str::to_owned))
    }

    fn set_var(&mut self, r: Resource<RequestHandle>, name: String, value: String) -> wasmtime::Result<()> {
        self.edit_request(&r, Edits::One(Op::SetVar, name.into(), value.into()))
    }

    fn set_response_header(
        &mut self,
        r: Resource<RequestHandle>,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.edit_request(&r, Edits::One(Op::SetResponseHeader, name.into(), value.into()))
    }

    fn append_response_header(
        &mut self,
        r: Resource<RequestHandle>,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.edit_request(&r, Edits::One(Op::AppendResponseHeader, name.into(), value.into()))
    }

    fn apply(&mut self, r: Resource<RequestHandle>, edits: Vec<u8>) -> wasmtime::Result<()> {
        self.edit_request(&r, Edits::Batch(edits))
    }

    /// The host lends requests as borrows and takes them back itself; a
    /// guest never owns one, so there is nothing to free here.
    fn drop(&mut self, _r: Resource<RequestHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}
