//! A JSON/REST request as the gRPC request message: body, then query
//! parameters, then path variables (a path variable wins over the same
//! field in the query or the body), by the `google.api.http` rules.

use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};
use wasmgate_sdk::text::percent_decode;

use crate::fields;
use crate::frame;
use crate::routes::{BodyTarget, Route};

/// How requests are read, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestOptions {
    pub max_message_bytes: usize,
    pub max_json_depth: usize,
    pub ignore_unknown_query_parameters: bool,
}

/// Why a request cannot become the method's request message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// 400: the client sent something the message cannot hold.
    Invalid(String),
    /// 413: the encoded message is over `max_request_message_bytes`.
    TooLarge { len: usize, limit: usize },
}

/// The framed gRPC request body for `route`, from the path variables'
/// values (in the template's order), the raw query string and the body.
pub(crate) fn build(
    route: &Route,
    path_values: &[String],
    query: Option<&str>,
    body: &[u8],
    options: &RequestOptions,
) -> Result<Vec<u8>, RequestError> {
    let input = route.method.input();
    let mut message = match &route.body {
        BodyTarget::None if !body.is_empty() => {
            return Err(RequestError::Invalid(format!("{} takes no request body", route.grpc_path)));
        }
        BodyTarget::None => DynamicMessage::new(input.clone()),
        _ if body.iter().all(u8::is_ascii_whitespace) => DynamicMessage::new(input.clone()),
        BodyTarget::Whole => from_json(&input, body, None, options)?,
        BodyTarget::Field(field) => from_json(&input, body, Some(field.json_name()), options)?,
    };
    // With the whole message from the body there are no query parameters
    // left to bind.
    if !matches!(route.body, BodyTarget::Whole) {
        for (name, value) in query.into_iter().flat_map(|q| q.split('&')).filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (!name.is_empty()).then_some((name, value))
        }) {
            let name = utf8(percent_decode(name, true), "a query parameter name")?;
            let value = utf8(percent_decode(value, true), &format!("query parameter {name}"))?;
            let path = match fields::resolve(&input, &name.split('.').collect::<Vec<_>>(), true) {
                Ok(path) => path,
                Err(_) if options.ignore_unknown_query_parameters => continue,
                Err(e) => return Err(RequestError::Invalid(format!("query parameter {name}: {e}"))),
            };
            fields::set_text(&mut message, &path, &value)
                .map_err(|e| RequestError::Invalid(format!("query parameter {name}: {e}")))?;
        }
    }
    for (path, value) in route.path_fields.iter().zip(path_values) {
        fields::set_text(&mut message, path, value).map_err(|e| RequestError::Invalid(format!("path: {e}")))?;
    }
    let encoded = message.encode_to_vec();
    if encoded.len() > options.max_message_bytes {
        return Err(RequestError::TooLarge { len: encoded.len(), limit: options.max_message_bytes });
    }
    frame::encode(&encoded).map_err(RequestError::Invalid)
}

/// The body as the message (or, with `field`, as that field of it), by the
/// proto3 JSON mapping; an unknown field is an error naming it and where
/// it is.
fn from_json(
    input: &MessageDescriptor,
    body: &[u8],
    field: Option<&str>,
    options: &RequestOptions,
) -> Result<DynamicMessage, RequestError> {
    if nesting_exceeds(body, options.max_json_depth) {
        return Err(RequestError::Invalid(format!(
            "the JSON body nests deeper than max_json_depth ({})",
            options.max_json_depth
        )));
    }
    let invalid = |e: &dyn std::fmt::Display| RequestError::Invalid(format!("invalid JSON body: {e}"));
    let strict = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let parsed = match field {
        None => {
            let mut json = serde_json::Deserializer::from_slice(body);
            let parsed = DynamicMessage::deserialize_with_options(
                input.clone(),
                serde_path_to_error::Deserializer::new(&mut json, &mut track),
                &strict,
            );
            parsed.and_then(|m| json.end().map(|()| m))
        }
        Some(name) => {
            // The body is the field's value: wrapped as `{ "field": body }`,
            // the same mapping reads every kind of field.
            let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| invalid(&e))?;
            let wrapped = serde_json::Value::Object([(name.to_owned(), value)].into_iter().collect());
            DynamicMessage::deserialize_with_options(
                input.clone(),
                serde_path_to_error::Deserializer::new(wrapped, &mut track),
                &strict,
            )
        }
    };
    parsed.map_err(|e| match track.path().to_string().as_str() {
        "." => invalid(&e),
        path => invalid(&format!("{path}: {e}")),
    })
}

/// Whether `json` has arrays and objects nested deeper than `max`:
/// checked before parsing, so a hostile body costs one linear scan.
fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, RequestError> {
    String::from_utf8(bytes).map_err(|_| RequestError::Invalid(format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert!(!nesting_exceeds(br#"{"a":[{"b":1}]}"#, 3));
        assert!(nesting_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!nesting_exceeds(br#"{"a":"[[[[\"[[[["}"#, 1));
        assert!(nesting_exceeds(&[b'['; 10_000], 64));
    }
}
