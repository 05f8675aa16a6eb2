//! `http-client`: plugin calls to the config's upstreams (see `fanout`).

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
