//! The host side of the WIT contract (`wit/plugin.wit`), one file per
//! interface, each implemented on the instance's store data
//! ([`super::instance::InstanceState`]).

/// The header accessors `request` and `response` share: reads of the lent
/// message's headers, and single edits through the same path as `apply`.
macro_rules! header_accessors {
    ($handle:ty, $read:ident, $edit:ident) => {
        fn header(&mut self, r: Resource<$handle>, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
            Ok(Headers::first(&self.$read(&r)?.head.headers, &name))
        }

        fn header_all(&mut self, r: Resource<$handle>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
            Ok(Headers::all(&self.$read(&r)?.head.headers, &name))
        }

        fn headers(&mut self, r: Resource<$handle>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
            Ok(Headers::list(&self.$read(&r)?.head.headers))
        }

        fn set_header(&mut self, r: Resource<$handle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
            self.$edit(&r, Edits::One(Op::SetHeader, name.into(), value.into()))
        }

        fn append_header(&mut self, r: Resource<$handle>, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
            self.$edit(&r, Edits::One(Op::AppendHeader, name.into(), value.into()))
        }

        fn remove_header(&mut self, r: Resource<$handle>, name: String) -> wasmtime::Result<()> {
            self.$edit(&r, Edits::One(Op::RemoveHeader, name.into(), Bytes::new()))
        }
    };
}

mod clock;
mod http_client;
mod log;
mod metrics;
mod request;
mod response;
mod state;

pub(super) use http_client::add_sync_to_linker as add_sync_http_client_to_linker;
pub(super) use state::add_sync_to_linker as add_sync_state_to_linker;
