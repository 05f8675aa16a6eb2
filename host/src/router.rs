//! Route matching: built once per snapshot, matched per request.
//!
//! Whole-path patterns go through a radix tree (static segments win over
//! `{param}`); host and method then pick among the routes that share the
//! pattern, in config order. When none fits, the longest prefix route that
//! fits is used, so a catch-all still catches requests a more specific
//! pattern refused by host or method.

use std::collections::HashMap;

use http::Method;

/// A route's `path` or `path_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The whole path, with `{param}` segments.
    Exact(String),
    /// The path itself and everything below it, on segment boundaries.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
}

impl HostPattern {
    pub fn parse(s: &str) -> Self {
        let s = s.to_ascii_lowercase();
        match s.strip_prefix('*') {
            Some(suffix) => Self::Suffix(suffix.to_owned()),
            None => Self::Exact(s),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h.eq_ignore_ascii_case(host),
            Self::Suffix(s) => host.len() > s.len() && host.to_ascii_lowercase().ends_with(s.as_str()),
        }
    }
}

/// What a route matches: path, methods and hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatcher {
    /// Exact path (with parameters) or prefix.
    pub path: PathPattern,
    /// Empty: any method.
    pub methods: Vec<Method>,
    /// Empty: any host.
    pub hosts: Vec<HostPattern>,
}

impl RouteMatcher {
    fn accepts(&self, method: &Method, host: Option<&str>) -> (bool, bool) {
        let host_ok = self.hosts.is_empty() || host.is_some_and(|h| self.hosts.iter().any(|p| p.matches(h)));
        let method_ok = self.methods.is_empty()
            || self.methods.contains(method)
            || (*method == Method::HEAD && self.methods.contains(&Method::GET));
        (host_ok, method_ok)
    }
}

/// Two routes whose paths cannot live in one tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path pattern {pattern:?} conflicts with another route's: {reason}")]
pub struct RouteConflict {
    pub route: usize,
    pub pattern: String,
    pub reason: String,
}

/// What the router found for a request.
pub enum RouteLookup {
    /// The first route, in config order, that matches.
    Found {
        /// Its index in the config's routes.
        route: usize,
        /// `{name}` segments of the path, with their values.
        params: Vec<(String, String)>,
    },
    /// The path exists, but not for this method.
    MethodNotAllowed {
        /// The methods that path takes, for the `Allow` field.
        allowed: Vec<Method>,
    },
    /// No route has this path (or host).
    NotFound,
}

/// The routes' matchers, compiled: a radix tree of exact paths, then
/// prefixes longest first, so a lookup does not walk every route.
pub struct Router {
    tree: matchit::Router<Vec<usize>>,
    matchers: Vec<RouteMatcher>,
    /// Prefix routes, longest prefix first.
    prefixes: Vec<(String, usize)>,
}

impl Router {
    /// Compiles the matchers, or reports every pair that conflicts.
    pub fn build(matchers: Vec<RouteMatcher>) -> Result<Self, Vec<RouteConflict>> {
        let mut by_pattern: Vec<(String, Vec<usize>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut prefixes = Vec::new();
        for (route, m) in matchers.iter().enumerate() {
            match &m.path {
                PathPattern::Exact(pattern) => match index.get(pattern) {
                    Some(&i) => by_pattern[i].1.push(route),
                    None => {
                        index.insert(pattern.clone(), by_pattern.len());
                        by_pattern.push((pattern.clone(), vec![route]));
                    }
                },
                // Prefixes stay out of the tree: a catch-all there would
                // conflict with `{param}` patterns at the same depth.
                PathPattern::Prefix(p) => prefixes.push((p.trim_end_matches('/').to_owned(), route)),
            }
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));

        let mut tree = matchit::Router::new();
        let mut conflicts = Vec::new();
        for (pattern, routes) in by_pattern {
            let first = routes[0];
            if let Err(e) = tree.insert(pattern.clone(), routes) {
                conflicts.push(RouteConflict { route: first, pattern, reason: e.to_string() });
            }
        }
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
        Ok(Self { tree, matchers, prefixes })
    }

    /// `host` is the request's host without port.
    pub fn lookup(&self, method: &Method, host: Option<&str>, path: &str) -> RouteLookup {
        let mut allowed = Vec::new();
        if let Ok(found) = self.tree.at(path) {
            for &route in found.value {
                let (host_ok, method_ok) = self.matchers[route].accepts(method, host);
                if host_ok && method_ok {
                    let params = found.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                    return RouteLookup::Found { route, params };
                }
                if host_ok {
                    allowed.extend(self.matchers[route].methods.iter().cloned());
                }
            }
        }
        for (prefix, route) in &self.prefixes {
            let under = path.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if !under {
                continue;
            }
            let (host_ok, method_ok) = self.matchers[*route].accepts(method, host);
            if host_ok && method_ok {
                return RouteLookup::Found { route: *route, params: Vec::new() };
            }
            if host_ok {
                allowed.extend(self.matchers[*route].methods.iter().cloned());
            }
        }
        if allowed.is_empty() {
            RouteLookup::NotFound
        } else {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            allowed.dedup();
            RouteLookup::MethodNotAllowed { allowed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(p: &str) -> RouteMatcher {
        RouteMatcher { path: PathPattern::Exact(p.into()), methods: vec![], hosts: vec![] }
    }

    fn prefix(p: &str) -> RouteMatcher {
        RouteMatcher { path: PathPattern::Prefix(p.into()), methods: vec![], hosts: vec![] }
    }

    fn found(r: &Router, m: Method, host: Option<&str>, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        match r.lookup(&m, host, path) {
            RouteLookup::Found { route, params } => Some((route, params)),
            _ => None,
        }
    }

    #[test]
    fn specific_beats_param_beats_prefix() {
        let r = Router::build(vec![exact("/users/me"), exact("/users/{id}"), prefix("/users"), prefix("/")]).unwrap();
        assert_eq!(found(&r, Method::GET, None, "/users/me").unwrap().0, 0);
        let (route, params) = found(&r, Method::GET, None, "/users/42").unwrap();
        assert_eq!((route, params), (1, vec![("id".into(), "42".into())]));
        assert_eq!(found(&r, Method::GET, None, "/users/42/orders").unwrap().0, 2);
        assert_eq!(found(&r, Method::GET, None, "/users").unwrap().0, 2);
        assert_eq!(found(&r, Method::GET, None, "/usersx").unwrap().0, 3);
        assert_eq!(found(&r, Method::GET, None, "/").unwrap().0, 3);
    }

    #[test]
    fn method_and_host_select_and_fall_back_to_prefix() {
        let mut get_users = exact("/users/{id}");
        get_users.methods = vec![Method::GET];
        let mut admin = prefix("/");
        admin.hosts = vec![HostPattern::parse("*.admin.test")];
        let r = Router::build(vec![get_users, admin]).unwrap();
        assert_eq!(found(&r, Method::HEAD, None, "/users/1").unwrap().0, 0);
        assert_eq!(found(&r, Method::POST, Some("x.admin.test"), "/users/1").unwrap().0, 1);
        assert!(found(&r, Method::GET, Some("admin.test"), "/other").is_none());
        match r.lookup(&Method::POST, None, "/users/1") {
            RouteLookup::MethodNotAllowed { allowed } => assert_eq!(allowed, vec![Method::GET]),
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn conflicting_patterns_are_reported() {
        let err = Router::build(vec![exact("/a/{x}"), exact("/a/{y}")]).err().unwrap();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].route, 1);
    }
}
