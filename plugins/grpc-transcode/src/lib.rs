//! grpc-transcode: REST/JSON clients in front of a gRPC service.
//!
//! A request that matches an HTTP binding of a gRPC method (from the
//! `google.api.http` annotations of the descriptor set, or the config's
//! `routes`) becomes that gRPC call: `POST /package.Service/Method`,
//! `content-type: application/grpc`, the request message built from the
//! path, the query and the JSON body. Its reply becomes JSON, and its
//! `grpc-status` an HTTP status. Everything is compiled at configure time
//! (descriptor pool, templates, field paths); a request costs the match and
//! the transcoding. See README.md.

mod fields;
mod frame;
mod request;
mod response;
mod routes;
mod status;
mod template;

use base64::Engine as _;
use prost_reflect::DescriptorPool;
use wasmgate_sdk::prelude::*;

use crate::frame::Limits;
use crate::request::{RequestError, RequestOptions};
use crate::response::{Answer, ResponseOptions};
use crate::routes::{Route, RouteConfig};

/// The plugin's config.
///
/// ```toml
/// { plugin = "grpc-transcode", config = {
///     descriptor_set_base64 = { "$file" = "catalog.pb.b64" },
///     routes = [{ get = "/v1/products/{id}", method = "catalog.Products/Get" }],
/// } }
/// ```
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A `FileDescriptorSet` (`protoc --include_imports --descriptor_set_out`),
    /// base64-encoded: `$file` embeds text. Whitespace is ignored.
    descriptor_set_base64: String,
    /// Explicit bindings, matched before the annotations'.
    #[serde(default)]
    routes: Vec<RouteConfig>,
    /// Bind the methods' `google.api.http` annotations.
    #[serde(default = "yes")]
    use_annotations: bool,
    /// Only these services' annotations (full names); all when empty.
    #[serde(default)]
    services: Vec<String>,
    /// A request that matches no binding: `"reject"` (404, or 405 when the
    /// path matches for another method) or `"pass"` (on, untouched).
    #[serde(default)]
    on_unmatched: Unmatched,
    /// Write fields that hold their default value.
    #[serde(default)]
    emit_defaults: bool,
    /// Write the `.proto` field names (`created_at`) instead of lowerCamelCase.
    #[serde(default)]
    original_field_names: bool,
    /// A server-streaming reply as one JSON `"array"` or `"ndjson"`.
    #[serde(default)]
    streaming: Streaming,
    /// Skip query parameters that name no field instead of answering 400.
    #[serde(default)]
    ignore_unknown_query_parameters: bool,
    #[serde(default = "default_message_bytes")]
    max_request_message_bytes: usize,
    #[serde(default = "default_message_bytes")]
    max_response_message_bytes: usize,
    #[serde(default = "default_messages")]
    max_response_messages: usize,
    #[serde(default = "default_depth")]
    max_json_depth: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Unmatched {
    #[default]
    Reject,
    Pass,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Streaming {
    #[default]
    Array,
    Ndjson,
}

fn yes() -> bool {
    true
}

fn default_message_bytes() -> usize {
    4 << 20
}

fn default_messages() -> usize {
    1024
}

fn default_depth() -> usize {
    32
}

/// The pipeline var naming the route a request was transcoded by, for the
/// response phase.
const ROUTE_VAR: &str = "grpc-transcode.route";

#[derive(Debug)]
pub struct GrpcTranscode {
    routes: Vec<Route>,
    on_unmatched: Unmatched,
    request: RequestOptions,
    response: ResponseOptions,
}

impl Plugin for GrpcTranscode {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let compact: Vec<u8> = config.descriptor_set_base64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let set = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| format!("descriptor_set_base64: not base64: {e}"))?;
        let pool = DescriptorPool::decode(set.as_slice())
            .map_err(|e| format!("descriptor_set_base64: not a FileDescriptorSet: {e}"))?;
        let routes = routes::compile(&pool, &config.routes, config.use_annotations, &config.services)?;
        if routes.is_empty() {
            return Err("no routes: the descriptor set has no google.api.http annotations (on the services \
                        given) and the config no `routes`"
                .into());
        }
        for (name, value) in [
            ("max_request_message_bytes", config.max_request_message_bytes),
            ("max_response_message_bytes", config.max_response_message_bytes),
            ("max_response_messages", config.max_response_messages),
            ("max_json_depth", config.max_json_depth),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(Self {
            routes,
            on_unmatched: config.on_unmatched,
            request: RequestOptions {
                max_message_bytes: config.max_request_message_bytes,
                max_json_depth: config.max_json_depth,
                ignore_unknown_query_parameters: config.ignore_unknown_query_parameters,
            },
            response: ResponseOptions {
                limits: Limits {
                    max_message_bytes: config.max_response_message_bytes,
                    max_messages: config.max_response_messages,
                },
                emit_defaults: config.emit_defaults,
                original_field_names: config.original_field_names,
                ndjson: config.streaming == Streaming::Ndjson,
            },
        })
    }

    fn needs(&self) -> Needs {
        Needs { request_body: true, response: true, response_body: true, ..Needs::default() }.prefetch_var(ROUTE_VAR)
    }

    fn on_request(&self, req: &Request) -> Action {
        let (method, path) = (req.method(), req.path());
        let mut allowed: Vec<&str> = Vec::new();
        let found = self.routes.iter().enumerate().find_map(|(i, route)| {
            let values = route.template.matches(&path)?;
            if route.http_method != method {
                allowed.push(&route.http_method);
                return None;
            }
            Some((i, route, values))
        });
        let Some((index, route, values)) = found else {
            return self.unmatched(&method, &path, &allowed);
        };
        let transcoded = values.map_err(RequestError::Invalid).and_then(|values| {
            let body = req.body().unwrap_or_default();
            request::build(route, &values, req.query().as_deref(), &body, &self.request)
        });
        let framed = match transcoded {
            Ok(framed) => framed,
            Err(RequestError::Invalid(detail)) => return reply(response::problem(400, &detail, None)),
            Err(RequestError::TooLarge { len, limit }) => {
                let detail = format!("a request message of {len} bytes, over max_request_message_bytes ({limit})");
                return reply(response::problem(413, &detail, None));
            }
        };
        req.set_method("POST");
        req.set_path(&route.grpc_path);
        req.set_query(None);
        req.set_header("content-type", "application/grpc");
        req.set_header("te", "trailers");
        req.remove_header("content-length");
        req.set_body(framed);
        req.set_var(ROUTE_VAR, &wasmgate_sdk::text::decimal(index as u64));
        Action::Continue
    }

    fn on_response(&self, req: &Request, resp: &Response) {
        let Some(route) = req.var(ROUTE_VAR).and_then(|i| i.parse::<usize>().ok()).and_then(|i| self.routes.get(i))
        else {
            return; // Not transcoded: passed through.
        };
        let status = response::grpc_status(|name| resp.trailer(name), |name| resp.header(name));
        let answer = match status {
            Some(status) => response::transcode(route, &status, &resp.body().unwrap_or_default(), &self.response),
            None => response::bad_gateway(&format!(
                "the upstream answered {} without a grpc-status: not a gRPC reply",
                resp.status()
            )),
        };
        answer_with(resp, answer);
    }
}

impl GrpcTranscode {
    fn unmatched(&self, method: &str, path: &str, allowed: &[&str]) -> Action {
        if self.on_unmatched == Unmatched::Pass {
            return Action::Continue;
        }
        if allowed.is_empty() {
            let detail = format!("no gRPC method is bound to {method} {path}");
            return reply(response::problem(404, &detail, None));
        }
        let mut allow: Vec<&str> = allowed.to_vec();
        allow.sort_unstable();
        allow.dedup();
        let allow = allow.join(", ");
        let detail = format!("{path} takes {allow}");
        as_reply(response::problem(405, &detail, None)).header("allow", allow).into()
    }
}

fn as_reply(answer: Answer) -> Reply {
    Reply::new(answer.status).header("content-type", answer.content_type).body(answer.body)
}

fn reply(answer: Answer) -> Action {
    as_reply(answer).into()
}

/// The upstream's reply turned into `answer`: its headers kept but for the
/// gRPC ones, its trailers dropped (a JSON answer is complete without them).
fn answer_with(resp: &Response, answer: Answer) {
    resp.set_status(answer.status);
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding", "grpc-accept-encoding"] {
        resp.remove_header(name);
    }
    resp.set_header("content-type", answer.content_type);
    resp.set_body(answer.body);
    resp.set_trailers(&[]);
}

export_plugin!(GrpcTranscode);

#[cfg(test)]
mod tests;
