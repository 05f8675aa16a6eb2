//! A gRPC reply as the JSON answer: the status from the trailers (or the
//! headers of a trailers-only reply) mapped to an HTTP status, the
//! messages as JSON by the proto3 mapping, errors as problem+json.

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, SerializeOptions};
use serde::Serialize;
use wasmgate_sdk::text::percent_decode;

use crate::frame::{self, Limits};
use crate::routes::Route;
use crate::status;

/// How replies are written, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseOptions {
    pub limits: Limits,
    pub emit_defaults: bool,
    pub original_field_names: bool,
    pub ndjson: bool,
}

/// `grpc-status` and `grpc-message` of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrpcStatus {
    pub code: u32,
    pub message: String,
}

/// The reply's status: from the trailers when they carry one, else from
/// the headers (a trailers-only reply, the usual form of an error). `None`
/// when neither does; a code that is not a number reads as UNKNOWN (2),
/// as gRPC clients read it.
pub(crate) fn grpc_status(
    trailer: impl Fn(&str) -> Option<String>,
    header: impl Fn(&str) -> Option<String>,
) -> Option<GrpcStatus> {
    let (code, message) = match trailer("grpc-status") {
        Some(code) => (code, trailer("grpc-message")),
        None => (header("grpc-status")?, header("grpc-message")),
    };
    let message = message.map(|m| String::from_utf8_lossy(&percent_decode(&m, false)).into_owned());
    Some(GrpcStatus { code: code.trim().parse().unwrap_or(2), message: message.unwrap_or_default() })
}

/// What the client gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The answer to a gRPC reply of `route`'s method with this status and body.
pub(crate) fn transcode(route: &Route, status: &GrpcStatus, body: &[u8], options: &ResponseOptions) -> Answer {
    if status.code != 0 {
        return grpc_error(status);
    }
    let messages = match frame::split(body, options.limits) {
        Ok(messages) => messages,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let streaming = route.method.is_server_streaming();
    if !streaming && messages.len() != 1 {
        return bad_gateway(&format!("a unary reply of {} messages", messages.len()));
    }
    let output = route.method.output();
    let mut out = Vec::with_capacity(body.len() * 2);
    if streaming && !options.ndjson {
        out.push(b'[');
    }
    for (i, message) in messages.iter().enumerate() {
        if streaming && i > 0 && !options.ndjson {
            out.push(b',');
        }
        if let Err(e) = write_json(&mut out, &output, message, route.response_body.as_ref(), options) {
            return bad_gateway(&e);
        }
        if streaming && options.ndjson {
            out.push(b'\n');
        }
    }
    if streaming && !options.ndjson {
        out.push(b']');
    }
    let content_type = if streaming && options.ndjson { "application/x-ndjson" } else { "application/json" };
    Answer { status: 200, content_type, body: out }
}

/// One reply message as JSON (or, with `response_body`, that field of it).
fn write_json(
    out: &mut Vec<u8>,
    output: &MessageDescriptor,
    encoded: &[u8],
    response_body: Option<&FieldDescriptor>,
    options: &ResponseOptions,
) -> Result<(), String> {
    let message = DynamicMessage::decode(output.clone(), encoded)
        .map_err(|e| format!("the reply is not a valid {}: {e}", output.full_name()))?;
    let serialize = SerializeOptions::new()
        .skip_default_fields(!options.emit_defaults)
        .use_proto_field_name(options.original_field_names);
    let mut json = serde_json::Serializer::new(out);
    match response_body {
        None => message.serialize_with_options(&mut json, &serialize),
        Some(field) => {
            // The field's JSON form is its value in a message holding only
            // it; at its default it is left out, and then written with
            // defaults (only its own: everything in it is default too).
            let mut only = DynamicMessage::new(output.clone());
            only.set_field(field, message.get_field(field).into_owned());
            let key = if options.original_field_names { field.name() } else { field.json_name() };
            let mut value = serde_json::Value::Null;
            for serialize in [serialize.clone(), serialize.skip_default_fields(false)] {
                let mut whole = only
                    .serialize_with_options(serde_json::value::Serializer, &serialize)
                    .map_err(|e| format!("the reply cannot be written as JSON: {e}"))?;
                if let Some(found) = whole.get_mut(key) {
                    value = found.take();
                    break;
                }
            }
            value.serialize(&mut json)
        }
    }
    .map_err(|e| format!("the reply cannot be written as JSON: {e}"))
}

/// A failed call as problem+json: the HTTP status of its code, its
/// `grpc-message` as the detail, and the code itself.
fn grpc_error(status: &GrpcStatus) -> Answer {
    let (http, name) = status::http_status(status.code);
    let detail = if status.message.is_empty() { name } else { status.message.as_str() };
    problem(http, detail, Some((status.code, name)))
}

pub(crate) fn bad_gateway(detail: &str) -> Answer {
    problem(502, detail, None)
}

/// RFC 9457 problem+json, with `grpc_status` (the code) and `grpc_code`
/// (its name) when a gRPC status is behind it.
pub(crate) fn problem(status: u16, detail: &str, grpc: Option<(u32, &str)>) -> Answer {
    #[derive(Serialize)]
    struct Problem<'a> {
        r#type: &'static str,
        title: &'static str,
        status: u16,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        grpc_status: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        grpc_code: Option<&'a str>,
    }
    let problem = Problem {
        r#type: "about:blank",
        title: status::title(status),
        status,
        detail,
        grpc_status: grpc.map(|(code, _)| code),
        grpc_code: grpc.map(|(_, name)| name),
    };
    // Strings and numbers only: serialising cannot fail.
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Answer { status, content_type: "application/problem+json", body }
}
