//! The trait a plugin implements, and the macro that exports it.

use std::cell::{Ref, RefCell};

use serde::de::DeserializeOwned;

use crate::{Action, Needs, Reply, Request, Response};

/// A gateway plugin.
///
/// The host creates instances of the plugin, configures each once and then
/// reuses it for many requests, one at a time. So anything expensive (parsing
/// keys, compiling patterns) belongs in [`configure`](Plugin::configure), and
/// `on_*` take `&self`: per-request data lives in the request (see
/// [`Request::set_var`]) or in [`host::state`](crate::host::state), never in
/// the plugin, because instances come and go.
pub trait Plugin: Sized + 'static {
    /// The plugin's config, deserialised from the JSON the host sends (the
    /// route's config merged over the plugin's defaults). Use
    /// `#[serde(deny_unknown_fields)]` so a typo is a load error, not a
    /// silently ignored setting. Plugins without settings use [`NoConfig`].
    type Config: DeserializeOwned;

    /// Validates the config and builds the plugin. An error rejects the
    /// config: the gateway reports it with the route and plugin name and
    /// refuses to load it, so say what is wrong and with which value.
    fn configure(config: Self::Config) -> Result<Self, String>;

    /// What the host must do for this plugin. Asked once, after
    /// [`configure`](Plugin::configure); the default asks for nothing, which
    /// is the cheapest pipeline.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// Inspects or modifies the request before it goes upstream, or answers
    /// it directly.
    fn on_request(&self, req: &Request) -> Action {
        let _ = req;
        Action::Continue
    }

    /// Inspects or modifies the response. Only called when
    /// [`needs`](Plugin::needs) says `response`; the request is read-only here.
    fn on_response(&self, req: &Request, resp: &Response) {
        let _ = (req, resp);
    }
}

/// The config of a plugin that has no settings: it accepts an empty object
/// and rejects any field, so a misplaced setting does not go unnoticed.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Parses the host's JSON and configures the plugin: the one path shared by
/// the wasm export and [`crate::testing::configure`], so config errors are
/// unit-testable.
///
/// An empty or `null` config means "no settings" and is read as `{}`, so
/// plugins whose fields are all optional need no special case. Errors name
/// the offending field (`request.x-name: invalid type: …`).
pub(crate) fn configure<P: Plugin>(config: &str) -> Result<P, String> {
    let trimmed = config.trim();
    let config = if trimmed.is_empty() || trimmed == "null" { "{}" } else { config };
    let mut deserializer = serde_json::Deserializer::from_str(config);
    let parsed =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| match err.path().to_string().as_str() {
            "." => format!("invalid config: {}", err.inner()),
            path => format!("invalid config: {path}: {}", err.inner()),
        })?;
    deserializer.end().map_err(|err| format!("invalid config: {err}"))?;
    P::configure(parsed)
}

/// The configured plugin of one wasm instance.
///
/// Lives in a `thread_local!` defined by [`export_plugin!`]: instances are
/// single-threaded, and a thread-local needs neither `unsafe` nor a lock.
#[doc(hidden)]
pub struct Slot<P> {
    plugin: RefCell<Option<P>>,
    /// What the plugin asked for, kept for every call: the prefetch lists
    /// say which names the call's input answers for.
    needs: RefCell<Needs>,
}

/// The needs of a slot not configured yet.
const NO_NEEDS: Needs = Needs {
    request_body: false,
    response: false,
    response_body: false,
    prefetch_headers: Vec::new(),
    prefetch_vars: Vec::new(),
    prefetch_request_id: false,
    prefetch_client_addr: false,
};

impl<P: Plugin> Slot<P> {
    #[allow(clippy::new_without_default)] // Only built by the export macro, in a const.
    pub const fn new() -> Self {
        Self { plugin: RefCell::new(None), needs: RefCell::new(NO_NEEDS) }
    }

    pub fn configure(&self, config: &str) -> Result<Needs, String> {
        let plugin = configure::<P>(config)?;
        let needs = plugin.needs();
        *self.plugin.borrow_mut() = Some(plugin);
        *self.needs.borrow_mut() = needs.clone();
        Ok(needs)
    }

    pub fn needs(&self) -> Ref<'_, Needs> {
        self.needs.borrow()
    }

    /// A host bug (calling before configuring) becomes a visible 500 rather
    /// than a trap that would hide the cause.
    pub fn on_request(&self, req: &Request) -> Action {
        match &*self.plugin.borrow() {
            Some(plugin) => plugin.on_request(req),
            None => Action::Respond(not_configured()),
        }
    }

    pub fn on_response(&self, req: &Request, resp: &Response) {
        match &*self.plugin.borrow() {
            Some(plugin) => plugin.on_response(req, resp),
            None => resp.replace_with(&not_configured()),
        }
    }
}

fn not_configured() -> Reply {
    Reply::problem(500, "Internal Server Error", "plugin not configured: the host called it before `configure`")
}

/// Compile-time check used by the native expansion of [`export_plugin!`], so
/// a wrong type is reported by `cargo test` too, not only by the wasm build.
#[doc(hidden)]
pub const fn assert_plugin<P: Plugin>() {}

/// Exports a [`Plugin`] as the component's `configure`, `on-request` and
/// `on-response`.
///
/// Use it once, at the root of a `cdylib` crate. On the host target it only
/// checks that the type is a plugin, so `cargo test` builds the same crate
/// natively.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: $crate::__private::Slot<$ty> =
                    const { $crate::__private::Slot::new() };
            }

            struct Export;

            impl $crate::__private::bindings::Guest for Export {
                fn configure(
                    config: ::std::string::String,
                ) -> ::core::result::Result<$crate::Needs, ::std::string::String> {
                    $crate::__private::configure(&PLUGIN, config)
                }

                fn on_request(
                    req: &$crate::__private::bindings::Request,
                    input: ::core::option::Option<::std::vec::Vec<u8>>,
                ) -> ($crate::Action, ::std::vec::Vec<u8>) {
                    $crate::__private::on_request(&PLUGIN, req, input)
                }

                fn on_response(
                    req: &$crate::__private::bindings::Request,
                    resp: &$crate::__private::bindings::Response,
                    input: ::core::option::Option<::std::vec::Vec<u8>>,
                ) -> ::std::vec::Vec<u8> {
                    $crate::__private::on_response(&PLUGIN, req, resp, input)
                }
            }

            $crate::__private::bindings::__export_plugin_world!(
                Export with_types_in $crate::__private::bindings
            );
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_plugin::<$ty>();
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::testing::{TestRequest, TestResponse};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        limit: u32,
        #[serde(default)]
        routes: Vec<RouteLimit>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RouteLimit {
        #[allow(dead_code)] // Only deserialised, to give errors a path.
        name: String,
    }

    #[derive(Debug)]
    struct Limiter(u32);

    impl Plugin for Limiter {
        type Config = Config;

        fn configure(config: Config) -> Result<Self, String> {
            if config.limit == 0 {
                return Err("`limit` must be at least 1".into());
            }
            Ok(Limiter(config.limit + config.routes.len() as u32))
        }

        fn needs(&self) -> Needs {
            Needs { response: true, ..Needs::default() }
        }

        fn on_request(&self, _req: &Request) -> Action {
            Reply::new(200).body(self.0.to_string()).into()
        }
    }

    fn error(config: &str) -> String {
        configure::<Limiter>(config).unwrap_err()
    }

    #[test]
    fn config_errors_name_the_field() {
        assert_eq!(
            error(r#"{"limit": "ten"}"#),
            r#"invalid config: limit: invalid type: string "ten", expected u32 at line 1 column 15"#
        );
        assert!(
            error(r#"{"limit": 1, "routes": [{"nam": "a"}]}"#)
                .starts_with("invalid config: routes[0].nam: unknown field `nam`, expected `name`")
        );
        assert!(error(r#"{}"#).contains("missing field `limit`"));
        assert!(error(r#"{"limit": 1, "extra": true}"#).contains("unknown field `extra`"));
        assert!(error(r#"{"limit": 1} trailing"#).contains("trailing characters"));
        assert_eq!(error(r#"{"limit": 0}"#), "`limit` must be at least 1");
    }

    struct Bare;

    impl Plugin for Bare {
        type Config = NoConfig;

        fn configure(_: NoConfig) -> Result<Self, String> {
            Ok(Bare)
        }
    }

    #[test]
    fn an_empty_or_null_config_reads_as_an_empty_object() {
        assert!(configure::<Bare>("").is_ok());
        assert!(configure::<Bare>(" null ").is_ok());
        assert!(configure::<Bare>("{}").is_ok());
        assert!(configure::<Bare>(r#"{"x": 1}"#).is_err());
        assert!(error("null").contains("missing field `limit`"));
    }

    #[test]
    fn a_configured_slot_calls_the_plugin_and_reports_its_needs() {
        let slot = Slot::<Limiter>::new();
        let needs = slot.configure(r#"{"limit": 3, "routes": [{"name": "a"}]}"#).unwrap();
        assert!(needs.response);
        let req = TestRequest::new("GET", "/");
        assert_eq!(slot.on_request(&req.as_request()), Action::Respond(Reply::new(200).body("4")));
    }

    #[test]
    fn an_unconfigured_slot_answers_500_instead_of_trapping() {
        let slot = Slot::<Limiter>::new();
        assert!(slot.configure(r#"{"limit": 0}"#).is_err());
        let req = TestRequest::new("GET", "/");
        let Action::Respond(reply) = slot.on_request(&req.as_request()) else {
            panic!("expected a reply");
        };
        assert_eq!(reply.status, 500);
        assert!(String::from_utf8_lossy(&reply.body).contains("plugin not configured"));

        let resp = TestResponse::new(200).body("upstream");
        slot.on_response(&req.as_request(), &resp.as_response());
        assert_eq!(resp.as_response().status(), 500);
        assert!(String::from_utf8(resp.as_response().body().unwrap()).unwrap().contains("plugin not configured"));
    }
}
