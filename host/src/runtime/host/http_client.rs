//! `http-client`: plugin calls to the config's upstreams (see `fanout`).

use wasmtime::component::Linker;

use crate::runtime::CONTRACT_VERSION;
use crate::runtime::bindings::http_client;
use crate::runtime::fanout;
use crate::runtime::instance::InstanceState;

impl http_client::Host for InstanceState {
    async fn fetch_all(
        &mut self,
        requests: Vec<http_client::OutboundRequest>,
    ) -> wasmtime::Result<Vec<Result<http_client::OutboundResponse, http_client::FetchError>>> {
        let request_id = self.current.as_ref().map(|info| info.request_id.clone());
        Ok(fanout::fetch_all(&self.services.upstreams, requests, request_id, &self.bounds).await)
    }
}

/// `http-client` for the synchronous call path: a fetch blocks its call's
/// thread, handed over to the runtime meanwhile ([`InstanceState::here`]),
/// until the responses are in or the call's wall deadline passes.
pub(in crate::runtime) fn add_sync_to_linker(l: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    let mut client = l.instance(&format!("wasmgate:plugin/http-client@{CONTRACT_VERSION}"))?;
    client.func_wrap("fetch-all", |mut cx, (requests,): (Vec<http_client::OutboundRequest>,)| {
        let out = cx.data_mut().here(true, async |s| http_client::Host::fetch_all(s, requests).await)?;
        Ok((out?,))
    })
}
