//! JSON body operations: rename, move, remove, add and the per-client
//! allow-list, compiled from the config once and applied to a parsed body.
//!
//! Paths are dotted (`meta.created`) and walk through objects. Wherever a
//! path meets an array, the rest of the path applies to every element: so a
//! list endpoint returning `[{…}, {…}]` is transformed element by element,
//! and `orders.price` reaches the `price` of every order. `move` is the one
//! exception (see [`Move`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use wasmgate_sdk::Request;

use crate::template::ValueTemplate;

/// The `body` table of the request or response section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyConfig {
    /// path → new name of its last segment.
    #[serde(default)]
    rename: BTreeMap<String, String>,
    /// path → path.
    #[serde(default, rename = "move")]
    moves: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    /// path → value; strings may hold placeholders.
    #[serde(default)]
    add: BTreeMap<String, Value>,
    allow: Option<AllowConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowConfig {
    /// Request header naming the client type.
    header: Option<String>,
    /// Client type → allowed paths.
    #[serde(default)]
    clients: BTreeMap<String, Vec<String>>,
    /// For a missing or unknown client type: a client type name, or a list
    /// of paths. Absent: the body is not filtered.
    default: Option<Value>,
}

/// A dotted path, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(Vec<String>);

impl Path {
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "`{text}` is not a field path: segments are separated by single dots, e.g. `meta.created`"
            ));
        }
        Ok(Self(segments))
    }

    fn split_last(&self) -> (&[String], &str) {
        let (last, parents) = self.0.split_last().expect("paths are never empty");
        (parents, last)
    }

    /// Whether one path is the other or lies inside it.
    fn overlaps(&self, other: &Path) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a == b)
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Relocates one value within each object the body is made of (the body,
/// or each element of a top-level array). Unlike the other operations a
/// move does not fan out through nested arrays: taking one value out of
/// many elements, or scattering one into many, has no sensible meaning.
#[derive(Debug)]
struct Move {
    from: Path,
    to: Path,
}

/// The compiled operations of one phase, applied in a fixed order: rename,
/// move, remove, add, then the allow-list. So the allow-list names fields
/// as the client sees them (after renames and moves), and fields added by
/// `add` must be listed in it to survive.
#[derive(Debug, Default)]
pub struct BodyOps {
    rename: Vec<(Path, String)>,
    moves: Vec<Move>,
    remove: Vec<Path>,
    add: Vec<(Path, ValueTemplate)>,
    allow: Option<Allow>,
}

impl BodyOps {
    pub fn compile(section: &str, config: BodyConfig) -> Result<Self, String> {
        let at = |field: &str, key: &str, err: String| format!("{section}.body.{field}.{key}: {err}");

        let mut rename = Vec::new();
        for (from, to) in config.rename {
            let path = Path::parse(&from).map_err(|e| at("rename", &from, e))?;
            if to.is_empty() || to.contains('.') {
                return Err(at(
                    "rename",
                    &from,
                    format!(
                        "the new name {to:?} must be a single non-empty field name; \
                         use `move` to change where a field sits"
                    ),
                ));
            }
            rename.push((path, to));
        }
        let targets: Vec<(&Path, Path)> = rename
            .iter()
            .map(|(path, to)| {
                let (parents, _) = path.split_last();
                (path, Path([parents, std::slice::from_ref(to)].concat()))
            })
            .collect();
        check_independent(&format!("{section}.body.rename"), targets.iter().map(|(f, t)| (*f, t)))?;

        let mut moves = Vec::new();
        for (from, to) in config.moves {
            let from_path = Path::parse(&from).map_err(|e| at("move", &from, e))?;
            let to_path = Path::parse(&to).map_err(|e| at("move", &from, e))?;
            if from_path.overlaps(&to_path) {
                return Err(at("move", &from, format!("cannot move `{from}` to `{to}`: one contains the other")));
            }
            moves.push(Move { from: from_path, to: to_path });
        }
        check_independent(&format!("{section}.body.move"), moves.iter().map(|m| (&m.from, &m.to)))?;

        let remove = config
            .remove
            .iter()
            .enumerate()
            .map(|(i, p)| Path::parse(p).map_err(|e| format!("{section}.body.remove[{i}]: {e}")))
            .collect::<Result<_, _>>()?;

        let add = config
            .add
            .into_iter()
            .map(|(path, value)| {
                let parsed = Path::parse(&path).map_err(|e| at("add", &path, e))?;
                let value = ValueTemplate::compile(value).map_err(|e| at("add", &path, e))?;
                Ok((parsed, value))
            })
            .collect::<Result<_, String>>()?;

        let allow = config.allow.map(|allow| Allow::compile(&format!("{section}.body.allow"), allow)).transpose()?;

        Ok(Self { rename, moves, remove, add, allow })
    }

    pub fn is_empty(&self) -> bool {
        self.rename.is_empty()
            && self.moves.is_empty()
            && self.remove.is_empty()
            && self.add.is_empty()
            && self.allow.is_none()
    }

    /// The header the allow-list picks a client type by, for `Vary`.
    pub fn client_header(&self) -> Option<&str> {
        self.allow.as_ref()?.header.as_deref()
    }

    /// `req` fills placeholders and names the client type.
    pub fn apply(&self, body: &mut Value, req: &Request) {
        for (path, to) in &self.rename {
            let (parents, last) = path.split_last();
            for_each_parent(body, parents, false, &mut |map| {
                if let Some(value) = map.remove(last) {
                    map.insert(to.clone(), value);
                }
            });
        }
        for Move { from, to } in &self.moves {
            for_each_context(body, &mut |map| move_field(map, from, to));
        }
        for path in &self.remove {
            let (parents, last) = path.split_last();
            for_each_parent(body, parents, false, &mut |map| {
                map.remove(last);
            });
        }
        for (path, template) in &self.add {
            // Rendered once per request, not per element; a placeholder
            // without a value leaves the field out rather than half-filled.
            let Some(value) = template.render(req) else {
                continue;
            };
            let (parents, last) = path.split_last();
            for_each_parent(body, parents, true, &mut |map| {
                map.insert(last.to_owned(), value.clone());
            });
        }
        if let Some(allow) = &self.allow
            && let Some(tree) = allow.tree_for(req)
        {
            tree.filter(body);
        }
    }
}

/// Operations of one kind run in the order of their keys, which a TOML
/// table does not keep: refuse `(from, to)` pairs that touch each other's
/// paths, so the order cannot matter.
fn check_independent<'a>(at: &str, pairs: impl Iterator<Item = (&'a Path, &'a Path)> + Clone) -> Result<(), String> {
    for (i, (from_a, to_a)) in pairs.clone().enumerate() {
        for (from_b, to_b) in pairs.clone().skip(i + 1) {
            for (x, y) in [(from_a, from_b), (from_a, to_b), (to_a, from_b), (to_a, to_b)] {
                if x.overlaps(y) {
                    return Err(format!(
                        "{at}: the operations on `{from_a}` and `{from_b}` touch the same \
                         field (`{x}` and `{y}`), so their result would depend on the order \
                         they run in"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Calls `f` on each object reached by `parents`, fanning out through
/// arrays (including a top-level one). With `create`, missing objects on
/// the way are created; a scalar in the way is left alone.
fn for_each_parent(value: &mut Value, parents: &[String], create: bool, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Array(items) => {
            for item in items {
                for_each_parent(item, parents, create, f);
            }
        }
        Value::Object(map) => match parents.split_first() {
            None => f(map),
            Some((first, rest)) => {
                if create && !map.contains_key(first) {
                    map.insert(first.clone(), Value::Object(Map::new()));
                }
                if let Some(child) = map.get_mut(first) {
                    for_each_parent(child, rest, create, f);
                }
            }
        },
        _ => {}
    }
}

/// The objects a body is made of: itself, or each element of a top-level
/// array.
fn for_each_context(value: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => f(map),
        Value::Array(items) => {
            for item in items {
                if let Value::Object(map) = item {
                    f(map);
                }
            }
        }
        _ => {}
    }
}

fn move_field(map: &mut Map<String, Value>, from: &Path, to: &Path) {
    let (from_parents, from_last) = from.split_last();
    let Some(source) = object_at(map, from_parents, false) else {
        return;
    };
    let Some(value) = source.remove(from_last) else {
        return;
    };
    let (to_parents, to_last) = to.split_last();
    match object_at(map, to_parents, true) {
        Some(target) => {
            target.insert(to_last.to_owned(), value);
        }
        // A scalar sits where the target's parent should be: leave the
        // field where it was rather than lose it.
        None => {
            if let Some(source) = object_at(map, from_parents, false) {
                source.insert(from_last.to_owned(), value);
            }
        }
    }
}

/// The object at `path` inside `map`, through objects only.
fn object_at<'a>(map: &'a mut Map<String, Value>, path: &[String], create: bool) -> Option<&'a mut Map<String, Value>> {
    let mut current = map;
    for segment in path {
        if create && !current.contains_key(segment) {
            current.insert(segment.clone(), Value::Object(Map::new()));
        }
        current = current.get_mut(segment)?.as_object_mut()?;
    }
    Some(current)
}

/// The allowed paths of one client type as a tree, so filtering is one
/// walk of the body whatever the number of paths.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tree {
    /// Listed itself: kept whole.
    whole: bool,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn build(paths: &[String], at: &str) -> Result<Self, String> {
        let mut root = Tree::default();
        for (i, text) in paths.iter().enumerate() {
            let path = Path::parse(text).map_err(|e| format!("{at}[{i}]: {e}"))?;
            let mut node = &mut root;
            for segment in path.0 {
                node = node.children.entry(segment).or_default();
            }
            node.whole = true;
        }
        Ok(root)
    }

    /// Keeps only what the tree lists. Arrays are filtered element by
    /// element; a scalar where the tree expects an object is dropped, since
    /// only fields inside it were allowed.
    fn filter(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|key, child| match self.children.get(key) {
                    None => false,
                    Some(node) if node.whole => true,
                    Some(node) => node.filter_container(child),
                });
            }
            Value::Array(items) => items.retain_mut(|item| self.filter_container(item)),
            _ => {}
        }
    }

    /// Filters `value` and says whether to keep it.
    fn filter_container(&self, value: &mut Value) -> bool {
        if value.is_object() || value.is_array() {
            self.filter(value);
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Allow {
    header: Option<String>,
    /// Lowercase client type → tree.
    clients: BTreeMap<String, Tree>,
    /// Client type whose tree applies by default, or a tree of its own.
    default: DefaultAllow,
}

#[derive(Debug)]
enum DefaultAllow {
    Unfiltered,
    Client(String),
    Fields(Tree),
}

impl Allow {
    fn compile(at: &str, config: AllowConfig) -> Result<Self, String> {
        let header = match config.header {
            Some(name) if crate::headers::is_field_name(&name) => Some(name.to_ascii_lowercase()),
            Some(name) => return Err(format!("{at}.header: `{name}` is not a valid header name")),
            None => None,
        };
        if header.is_none() && !config.clients.is_empty() {
            return Err(format!("{at}: `clients` needs `header`, the request header that names the client type"));
        }
        if header.is_some() && config.clients.is_empty() {
            return Err(format!("{at}: `header` is set but `clients` lists no client type"));
        }
        let mut clients = BTreeMap::new();
        for (name, paths) in &config.clients {
            let tree = Tree::build(paths, &format!("{at}.clients.{name}"))?;
            if clients.insert(name.to_ascii_lowercase(), tree).is_some() {
                return Err(format!("{at}.clients: `{name}` is listed twice (client types are case-insensitive)"));
            }
        }
        let default = match config.default {
            None => DefaultAllow::Unfiltered,
            Some(Value::String(name)) => {
                let key = name.to_ascii_lowercase();
                if !clients.contains_key(&key) {
                    let known: Vec<&str> = config.clients.keys().map(String::as_str).collect();
                    return Err(format!(
                        "{at}.default: unknown client type `{name}` (defined: {})",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ));
                }
                DefaultAllow::Client(key)
            }
            Some(Value::Array(items)) => {
                let paths = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(path) => Ok(path),
                        other => Err(format!("{at}.default[{i}]: expected a field path, found {other}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                DefaultAllow::Fields(Tree::build(&paths, &format!("{at}.default"))?)
            }
            Some(other) => {
                return Err(format!(
                    "{at}.default: expected a client type name or a list of field paths, found {other}"
                ));
            }
        };
        if header.is_none() && matches!(default, DefaultAllow::Unfiltered) {
            return Err(format!("{at}: give `default` (a list of field paths), or `header` with `clients`"));
        }
        Ok(Self { header, clients, default })
    }

    /// `None`: leave the body unfiltered.
    fn tree_for(&self, req: &Request) -> Option<&Tree> {
        let client =
            self.header.as_deref().and_then(|header| req.header(header)).map(|value| value.trim().to_ascii_lowercase());
        if let Some(tree) = client.and_then(|client| self.clients.get(&client)) {
            return Some(tree);
        }
        match &self.default {
            DefaultAllow::Unfiltered => None,
            DefaultAllow::Client(name) => self.clients.get(name),
            DefaultAllow::Fields(tree) => Some(tree),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmgate_sdk::testing::TestRequest;

    use super::*;

    fn ops(config: Value) -> Result<BodyOps, String> {
        BodyOps::compile("response", serde_json::from_value(config).unwrap())
    }

    fn apply(config: Value, mut body: Value, req: &TestRequest) -> Value {
        ops(config).unwrap().apply(&mut body, &req.as_request());
        body
    }

    fn plain(config: Value, body: Value) -> Value {
        apply(config, body, &TestRequest::new("GET", "/"))
    }

    #[test]
    fn renames_in_place_and_through_arrays() {
        assert_eq!(
            plain(
                json!({"rename": {"user_name": "userName", "orders.order_id": "id", "absent": "x"}}),
                json!({"user_name": "a", "orders": [{"order_id": 1}, {"order_id": 2}, 3]})
            ),
            json!({"userName": "a", "orders": [{"id": 1}, {"id": 2}, 3]})
        );
    }

    #[test]
    fn top_level_arrays_apply_to_each_element() {
        assert_eq!(
            plain(
                json!({"rename": {"user_name": "userName"}, "remove": ["secret"]}),
                json!([{"user_name": "a", "secret": 1}, {"user_name": "b"}])
            ),
            json!([{"userName": "a"}, {"userName": "b"}])
        );
    }

    #[test]
    fn moves_into_and_out_of_nested_objects() {
        assert_eq!(
            plain(
                json!({"move": {"meta.created": "created", "owner": "links.owner"}}),
                json!({"meta": {"created": 1, "v": 2}, "owner": "x", "links": {"self": "/a"}})
            ),
            json!({"meta": {"v": 2}, "created": 1, "links": {"self": "/a", "owner": "x"}})
        );
        assert_eq!(
            plain(json!({"move": {"meta.created": "created"}}), json!([{"meta": {"created": 1}}, {"other": 2}])),
            json!([{"meta": {}, "created": 1}, {"other": 2}])
        );
    }

    #[test]
    fn a_move_blocked_by_a_scalar_keeps_the_field() {
        assert_eq!(plain(json!({"move": {"a": "b.c"}}), json!({"a": 1, "b": 5})), json!({"a": 1, "b": 5}));
    }

    #[test]
    fn removes_nested_fields_and_inside_arrays() {
        assert_eq!(
            plain(
                json!({"remove": ["password", "meta.internal", "items.cost"]}),
                json!({"password": "x", "meta": {"internal": 1, "v": 2}, "items": [{"cost": 1, "n": 2}]})
            ),
            json!({"meta": {"v": 2}, "items": [{"n": 2}]})
        );
    }

    #[test]
    fn adds_fields_with_templates_creating_objects() {
        let req = TestRequest::new("GET", "/users/7").param("id", "7").request_id("rid-1").var("user", "alice");
        assert_eq!(
            apply(
                json!({"add": {
                    "request_id": "{request_id}",
                    "meta.user": "{var.user}",
                    "meta.id": "{param.id}",
                    "version": 2,
                    "skipped": "{var.absent}",
                }}),
                json!({"name": "n", "version": 1}),
                &req
            ),
            json!({"name": "n", "version": 2, "request_id": "rid-1", "meta": {"user": "alice", "id": "7"}})
        );
    }

    #[test]
    fn allow_lists_per_client_type() {
        let config = json!({"allow": {
            "header": "x-client",
            "clients": {"mobile": ["id", "profile.name", "orders.id"], "web": ["id", "profile", "email"]},
            "default": "web",
        }});
        let body = json!({
            "id": 1, "email": "e", "secret": "s",
            "profile": {"name": "n", "bio": "b"},
            "orders": [{"id": 1, "total": 2}, {"id": 2}],
        });
        let with = |client: Option<&str>| {
            let mut req = TestRequest::new("GET", "/");
            if let Some(client) = client {
                req = req.header("x-client", client);
            }
            apply(config.clone(), body.clone(), &req)
        };
        assert_eq!(with(Some("mobile")), json!({"id": 1, "profile": {"name": "n"}, "orders": [{"id": 1}, {"id": 2}]}));
        assert_eq!(with(Some(" Mobile ")), with(Some("mobile")));
        let web = json!({"id": 1, "email": "e", "profile": {"name": "n", "bio": "b"}});
        assert_eq!(with(Some("web")), web);
        assert_eq!(with(Some("tv")), web, "unknown types get the default");
        assert_eq!(with(None), web, "so do requests without the header");
    }

    #[test]
    fn allow_list_defaults() {
        let config = json!({"allow": {"header": "x-client", "clients": {"mobile": ["id"]}}});
        let body = json!({"id": 1, "x": 2});
        let req = TestRequest::new("GET", "/");
        assert_eq!(apply(config, body.clone(), &req), body, "no default: unfiltered");

        let config = json!({"allow": {"default": ["id", "tags.name"]}});
        assert_eq!(
            apply(config, json!([{"id": 1, "x": 2, "tags": [{"name": "a", "c": 1}, "loose"]}]), &req),
            json!([{"id": 1, "tags": [{"name": "a"}]}])
        );
    }

    #[test]
    fn a_scalar_where_an_object_was_expected_is_dropped() {
        assert_eq!(
            plain(json!({"allow": {"default": ["a.b", "c"]}}), json!({"a": 5, "c": {"d": 1}})),
            json!({"c": {"d": 1}})
        );
    }

    #[test]
    fn config_mistakes_are_named() {
        let err = |config| ops(config).unwrap_err();
        assert!(err(json!({"rename": {"a..b": "c"}})).contains("response.body.rename.a..b"));
        assert!(err(json!({"rename": {"a": "b.c"}})).contains("use `move`"));
        assert!(err(json!({"rename": {"a": "b", "b": "c"}})).contains("touch the same field"));
        assert!(err(json!({"rename": {"meta": "info", "meta.x": "y"}})).contains("`meta` and `meta.x`"));
        assert!(err(json!({"move": {"a": "a.b"}})).contains("one contains the other"));
        assert!(err(json!({"move": {"a": "x", "b": "x.y"}})).contains("touch the same field"));
        assert!(err(json!({"remove": ["ok", ""]})).contains("response.body.remove[1]"));
        assert!(err(json!({"add": {"a": "{nope}"}})).contains("response.body.add.a"));
        assert!(err(json!({"allow": {"clients": {"m": ["a"]}}})).contains("needs `header`"));
        assert!(err(json!({"allow": {}})).contains("give `default`"));
        assert!(
            err(json!({"allow": {"header": "x-client", "clients": {"m": ["a"]}, "default": "web"}}))
                .contains("unknown client type `web` (defined: m)")
        );
        assert!(err(json!({"allow": {"default": [1]}})).contains("default[0]"));
        assert!(err(json!({"allow": {"header": "x c", "clients": {"m": []}}})).contains("header"));
    }
}
