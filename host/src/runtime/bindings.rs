//! The one `bindgen!` of the host: generating these bindings costs minutes of
//! compile time, so every other module uses them from here.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        // Both may wait on the network (upstreams, Redis).
        "wasmgate:plugin/http-client": async | trappable,
        "wasmgate:plugin/state": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "wasmgate:plugin/types.request": crate::runtime::instance::RequestHandle,
        "wasmgate:plugin/types.response": crate::runtime::instance::ResponseHandle,
    },
});

pub(super) use self::wasmgate::plugin::{clock, http_client, log, metrics, state, types};
