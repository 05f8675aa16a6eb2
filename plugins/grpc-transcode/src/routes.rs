//! The HTTP bindings of gRPC methods — from the config's `routes` and from
//! the `google.api.http` annotations in the descriptor set — compiled once
//! at configure time: templates parsed, field paths resolved.

use prost::Message as _;
use prost_reflect::{DescriptorPool, FieldDescriptor, MethodDescriptor};
use serde::Deserialize;

use crate::fields::{self, FieldPath};
use crate::template::Template;

/// An explicit mapping in the config:
/// `{ get = "/v1/products/{id}", method = "catalog.Products/Get" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    get: Option<String>,
    #[serde(default)]
    put: Option<String>,
    #[serde(default)]
    post: Option<String>,
    #[serde(default)]
    delete: Option<String>,
    #[serde(default)]
    patch: Option<String>,
    /// `package.Service/Method`.
    method: String,
    /// `"*"` (the whole request message), a top-level field name, or absent
    /// (no body: everything from the path and the query).
    #[serde(default)]
    body: Option<String>,
    /// A top-level field of the reply that is the whole JSON answer.
    #[serde(default)]
    response_body: Option<String>,
}

/// Where the request body goes.
#[derive(Debug, Clone)]
pub(crate) enum BodyTarget {
    None,
    Whole,
    Field(FieldDescriptor),
}

/// One HTTP method and path template bound to a gRPC method.
#[derive(Debug)]
pub(crate) struct Route {
    pub http_method: String,
    pub template: Template,
    /// The field each template variable sets, in the template's order.
    pub path_fields: Vec<FieldPath>,
    pub method: MethodDescriptor,
    /// `/package.Service/Method`.
    pub grpc_path: String,
    pub body: BodyTarget,
    pub response_body: Option<FieldDescriptor>,
}

/// Every route: the config's first, then the annotations' (in the order of
/// the descriptor set) unless `use_annotations` is off. `services` limits
/// the annotated ones to those services when not empty.
pub(crate) fn compile(
    pool: &DescriptorPool,
    configured: &[RouteConfig],
    use_annotations: bool,
    services: &[String],
) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for (i, route) in configured.iter().enumerate() {
        let compiled = compile_configured(pool, route).map_err(|e| format!("routes[{i}]: {e}"))?;
        routes.push(compiled);
    }
    if use_annotations {
        for name in services {
            if pool.get_service_by_name(name).is_none() {
                return Err(format!("services: the descriptor set has no service {name:?}"));
            }
        }
        for service in pool.services() {
            if !services.is_empty() && !services.iter().any(|s| s == service.full_name()) {
                continue;
            }
            for method in service.methods() {
                if let Some(rule) = http_rules(&method) {
                    let compiled = compile_rule(&method, &rule).map_err(|e| format!("{}: {e}", method.full_name()))?;
                    routes.extend(compiled);
                }
            }
        }
    }
    Ok(routes)
}

fn compile_configured(pool: &DescriptorPool, route: &RouteConfig) -> Result<Route, String> {
    let verbs = [
        ("GET", &route.get),
        ("PUT", &route.put),
        ("POST", &route.post),
        ("DELETE", &route.delete),
        ("PATCH", &route.patch),
    ];
    let mut given = verbs.iter().filter_map(|(verb, template)| template.as_ref().map(|t| (*verb, t)));
    let (Some((http_method, template)), None) = (given.next(), given.next()) else {
        return Err("give exactly one of get, put, post, delete, patch".into());
    };
    let (service, name) = route
        .method
        .split_once('/')
        .ok_or_else(|| format!("method {:?}: write it as package.Service/Method", route.method))?;
    let method = pool
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .ok_or_else(|| format!("method {:?}: not in the descriptor set", route.method))?;
    if method.is_client_streaming() {
        return Err(format!("method {:?}: client-streaming methods cannot be transcoded", route.method));
    }
    build(
        http_method,
        template,
        &method,
        route.body.as_deref().unwrap_or(""),
        route.response_body.as_deref().unwrap_or(""),
    )
}

/// The routes of one annotation and its additional bindings. Client
/// streaming methods have no REST form here and are left out.
fn compile_rule(method: &MethodDescriptor, rule: &HttpRule) -> Result<Vec<Route>, String> {
    if method.is_client_streaming() {
        return Ok(Vec::new());
    }
    let mut routes = Vec::new();
    for rule in std::iter::once(rule).chain(&rule.additional_bindings) {
        let (http_method, template) = match &rule.pattern {
            Some(Pattern::Get(t)) => ("GET", t),
            Some(Pattern::Put(t)) => ("PUT", t),
            Some(Pattern::Post(t)) => ("POST", t),
            Some(Pattern::Delete(t)) => ("DELETE", t),
            Some(Pattern::Patch(t)) => ("PATCH", t),
            Some(Pattern::Custom(custom)) => (custom.kind.as_str(), &custom.path),
            None => continue,
        };
        routes.push(build(http_method, template, method, &rule.body, &rule.response_body)?);
    }
    Ok(routes)
}

fn build(
    http_method: &str,
    template: &str,
    method: &MethodDescriptor,
    body: &str,
    response_body: &str,
) -> Result<Route, String> {
    if !wasmgate_sdk::text::is_token(http_method) {
        return Err(format!("invalid HTTP method {http_method:?}"));
    }
    let template = Template::parse(template).map_err(|e| format!("path {template:?}: {e}"))?;
    let input = method.input();
    let path_fields = template
        .variables()
        .iter()
        .map(|v| fields::resolve(&input, &v.field_path.iter().map(String::as_str).collect::<Vec<_>>(), false))
        .collect::<Result<Vec<_>, _>>()?;
    let body = match body {
        "" => BodyTarget::None,
        "*" => BodyTarget::Whole,
        name => BodyTarget::Field(
            fields::field(&input, name).ok_or_else(|| format!("body: {} has no field {name:?}", input.full_name()))?,
        ),
    };
    let response_body = match response_body {
        "" => None,
        name => Some(
            fields::field(&method.output(), name)
                .ok_or_else(|| format!("response_body: {} has no field {name:?}", method.output().full_name()))?,
        ),
    };
    Ok(Route {
        http_method: http_method.to_owned(),
        template,
        path_fields,
        grpc_path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        method: method.clone(),
        body,
        response_body,
    })
}

/// The method's `google.api.http` rule, if annotated. Read from the
/// options' encoding rather than through the pool's extension, so it works
/// whether or not the descriptor set carries `google/api/annotations.proto`.
fn http_rules(method: &MethodDescriptor) -> Option<HttpRule> {
    let encoded = method.options().encode_to_vec();
    MethodHttpOption::decode(encoded.as_slice()).ok()?.http
}

/// `google.protobuf.MethodOptions` as far as this plugin reads it: the
/// `google.api.http` extension, field 72295728.
#[derive(Clone, PartialEq, prost::Message)]
struct MethodHttpOption {
    #[prost(message, optional, tag = "72295728")]
    http: Option<HttpRule>,
}

/// `google.api.HttpRule` (google/api/http.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct HttpRule {
    #[prost(oneof = "Pattern", tags = "2, 3, 4, 5, 6, 8")]
    pattern: Option<Pattern>,
    #[prost(string, tag = "7")]
    body: String,
    #[prost(string, tag = "12")]
    response_body: String,
    #[prost(message, repeated, tag = "11")]
    additional_bindings: Vec<HttpRule>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Pattern {
    #[prost(string, tag = "2")]
    Get(String),
    #[prost(string, tag = "3")]
    Put(String),
    #[prost(string, tag = "4")]
    Post(String),
    #[prost(string, tag = "5")]
    Delete(String),
    #[prost(string, tag = "6")]
    Patch(String),
    #[prost(message, tag = "8")]
    Custom(CustomPattern),
}

#[derive(Clone, PartialEq, prost::Message)]
struct CustomPattern {
    #[prost(string, tag = "1")]
    kind: String,
    #[prost(string, tag = "2")]
    path: String,
}
