//! Field paths (`product.id`) resolved against a message type, and values
//! from path variables and query parameters set on them through the proto3
//! JSON mapping, so enums by name, 64-bit integers, bytes as base64 and the
//! well-known types (`Timestamp`, `Duration`, wrappers, `FieldMask`) read
//! as a JSON client would write them.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value};

/// Well-known message types whose JSON form is a scalar, so a single path
/// or query value can set them.
const SCALAR_MESSAGES: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// A field path, outermost first.
pub(crate) type FieldPath = Vec<FieldDescriptor>;

/// A field of `message` by its proto name or its JSON name.
pub(crate) fn field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message.get_field_by_name(name).or_else(|| message.get_field_by_json_name(name))
}

/// Resolves `names` from `message` down to a field a text value can set:
/// every step but the last a singular message, the last a scalar, an enum
/// or a scalar-like well-known type; repeated only when `repeated_ok`.
pub(crate) fn resolve(message: &MessageDescriptor, names: &[&str], repeated_ok: bool) -> Result<FieldPath, String> {
    let mut path = Vec::with_capacity(names.len());
    let mut current = message.clone();
    for (i, name) in names.iter().enumerate() {
        let Some(found) = field(&current, name) else {
            return Err(format!("{} has no field {name:?}", current.full_name()));
        };
        let last = i + 1 == names.len();
        let message_kind = found.kind().as_message().cloned();
        if !last {
            match message_kind {
                Some(inner) if !found.is_list() && !found.is_map() => current = inner,
                _ => return Err(format!("{} is not a singular message field", found.full_name())),
            }
        } else {
            if found.is_map() || (found.is_list() && !repeated_ok) {
                return Err(format!("{} is a repeated or map field", found.full_name()));
            }
            if let Some(inner) = message_kind
                && !SCALAR_MESSAGES.contains(&inner.full_name())
            {
                return Err(format!("{} is a message field ({}), not a value", found.full_name(), inner.full_name()));
            }
        }
        path.push(found);
    }
    Ok(path)
}

/// Sets (or, for a repeated field, appends) `text` at `path` in `message`.
pub(crate) fn set_text(message: &mut DynamicMessage, path: &[FieldDescriptor], text: &str) -> Result<(), String> {
    let Some((leaf, parents)) = path.split_last() else { return Ok(()) };
    let mut target = message;
    for parent in parents {
        target = match target.get_field_mut(parent) {
            Value::Message(inner) => inner,
            _ => return Err(format!("{} is not a message", parent.full_name())),
        };
    }
    let value = parse_text(target.descriptor(), leaf, text)?;
    match (target.get_field_mut(leaf), value) {
        (Value::List(list), Value::List(values)) => list.extend(values),
        (slot, value) => *slot = value,
    }
    Ok(())
}

/// `text` as a value of `leaf` (a list of one for a repeated field), read
/// by the proto3 JSON mapping from the JSON value a client would send.
fn parse_text(parent: MessageDescriptor, leaf: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let scalar = match leaf.kind() {
        Kind::Bool => match text {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            _ => return Err(format!("{}: {text:?} is not true or false", leaf.name())),
        },
        // An enum by number: the mapping takes numbers, not numeric text.
        Kind::Enum(_) => match text.parse::<i32>() {
            Ok(number) => serde_json::Value::from(number),
            Err(_) => serde_json::Value::String(text.to_owned()),
        },
        _ => serde_json::Value::String(text.to_owned()),
    };
    let value = if leaf.is_list() { serde_json::Value::Array(vec![scalar]) } else { scalar };
    let wrapper = serde_json::Value::Object([(leaf.json_name().to_owned(), value)].into_iter().collect());
    let parsed = DynamicMessage::deserialize(parent, wrapper).map_err(|e| format!("{}: {e}", leaf.name()))?;
    Ok(parsed.get_field(leaf).into_owned())
}
