//! The one `generate!` of the SDK. Plugin authors never see it: the SDK's own
//! types are mapped in with `with`, so records cross the boundary without
//! conversions, and `export_plugin!` reaches the export macro through
//! `crate::__private`.

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__export_plugin_world",
    default_bindings_module: "::wasmgate_sdk::__private::bindings",
    runtime_path: "::wasmgate_sdk::__private::wit_bindgen::rt",
    with: {
        "wasmgate:plugin/types@0.2.1/reply": crate::Reply,
        "wasmgate:plugin/types@0.2.1/action": crate::Action,
        "wasmgate:plugin/types@0.2.1/needs": crate::Needs,
        "wasmgate:plugin/state@0.2.1/decision": crate::records::Decision,
        "wasmgate:plugin/http-client@0.2.1/outbound-request": crate::records::OutboundRequest,
        "wasmgate:plugin/http-client@0.2.1/outbound-response": crate::records::OutboundResponse,
        "wasmgate:plugin/http-client@0.2.1/fetch-error": crate::records::FetchError,
    },
});
