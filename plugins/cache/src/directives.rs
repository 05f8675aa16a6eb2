//! `Cache-Control` (RFC 9111 §5.2) and the freshness it gives a response.

/// The directives the cache acts on, from every `Cache-Control` field of a
/// message. Unknown directives are ignored, as RFC 9111 §5.2 asks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    /// Seconds. `Some(0)` for a value that is not a number: RFC 9111
    /// §4.2.1 treats such a response as stale.
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
}

impl Directives {
    pub fn parse<S: AsRef<str>>(fields: &[S]) -> Self {
        let mut d = Self::default();
        for field in fields {
            for item in field.as_ref().split(',') {
                let (name, value) = match item.split_once('=') {
                    Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                    None => (item.trim(), None),
                };
                let seconds = || Some(value.and_then(delta_seconds).unwrap_or(0));
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    // `no-cache="set-cookie"` (a field list) too: this
                    // cache does not revalidate, so it stores none of them.
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                    // A directive given twice with different values is
                    // invalid: the smaller wins, the safe reading.
                    "max-age" => d.max_age = d.max_age.min(seconds()).or(seconds()),
                    "s-maxage" => d.s_maxage = d.s_maxage.min(seconds()).or(seconds()),
                    _ => {}
                }
            }
        }
        d
    }

    /// How long a shared cache may serve the response, in seconds, from
    /// `s-maxage`, `max-age` or `Expires` (against `Date`, or now without
    /// one), in that order; `None` when it says nothing.
    pub fn lifetime(&self, expires: Option<&str>, date: Option<&str>, now_ms: u64) -> Option<u64> {
        if let Some(s) = self.s_maxage.or(self.max_age) {
            return Some(s);
        }
        let expires = expires?;
        // An invalid `Expires` (`0` is common) means already expired.
        let Some(expires) = http_date_s(expires) else {
            return Some(0);
        };
        let base = date.and_then(http_date_s).unwrap_or(now_ms / 1000);
        Some(expires.saturating_sub(base))
    }
}

/// RFC 9111 §1.2.2: digits only; too large a number saturates.
fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch of an HTTP date in any of its three forms.
fn http_date_s(text: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    time.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// `Age` (RFC 9111 §5.1): seconds, 0 when absent or invalid.
pub fn age_s(value: Option<&str>) -> u64 {
    value.and_then(|v| delta_seconds(v.trim())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_from_several_fields_any_case_with_quotes() {
        let d = Directives::parse(&["Public, MAX-AGE=\"60\"", "s-maxage=10, x-unknown=1, no-cache=\"set-cookie\""]);
        assert!(d.public && d.no_cache && !d.no_store && !d.private);
        assert_eq!((d.max_age, d.s_maxage), (Some(60), Some(10)));
        assert_eq!(d.lifetime(None, None, 0), Some(10), "s-maxage first: a shared cache");
    }

    #[test]
    fn invalid_or_conflicting_ages_read_as_stale_or_smallest() {
        assert_eq!(Directives::parse(&["max-age=abc"]).max_age, Some(0));
        assert_eq!(Directives::parse(&["max-age=-5"]).max_age, Some(0));
        assert_eq!(Directives::parse(&["max-age=60, max-age=5"]).max_age, Some(5));
        assert_eq!(Directives::parse(&["max-age=5", "max-age=60"]).max_age, Some(5));
        assert_eq!(Directives::parse(&["max-age=99999999999999999999999"]).max_age, Some(u64::MAX));
    }

    #[test]
    fn expires_counts_from_date_or_now() {
        let d = Directives::default();
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(d.lifetime(Some("Sun, 06 Nov 1994 08:50:37 GMT"), Some(date), 0), Some(60));
        let now_ms = 784_111_777_000; // the date above
        assert_eq!(d.lifetime(Some("Sunday, 06-Nov-94 08:49:47 GMT"), None, now_ms), Some(10));
        assert_eq!(d.lifetime(Some("0"), Some(date), now_ms), Some(0), "invalid: expired");
        assert_eq!(d.lifetime(Some(date), Some("Sun, 06 Nov 1994 09:00:00 GMT"), 0), Some(0), "in the past");
        assert_eq!(d.lifetime(None, Some(date), now_ms), None);
        let max_age = Directives::parse(&["max-age=5"]);
        assert_eq!(max_age.lifetime(Some("0"), None, now_ms), Some(5), "max-age wins over Expires");
    }

    #[test]
    fn ages() {
        assert_eq!(age_s(Some(" 42 ")), 42);
        assert_eq!(age_s(Some("-1")), 0);
        assert_eq!(age_s(None), 0);
    }
}
