//! The verification keys: those written in the config are parsed and
//! checked once, in `configure`, so a bad key is a load error naming it
//! rather than a 401 for every request. Keys fetched from an identity
//! provider at run time go through the same checks (see [`crate::remote`]),
//! where a bad key is skipped with a warning instead.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use wasmgate_sdk::prelude::log;

/// Shorter RSA moduli are factorable with public effort: refusing them at
/// load time beats accepting forgeable tokens.
const MIN_RSA_BITS: usize = 2048;

/// A JWK Set with more entries than this is refused: identity providers
/// publish a handful (the current key, the next, the previous).
pub const MAX_JWKS_KEYS: usize = 100;

/// One entry of `keys`: exactly one key source, and the algorithms it may
/// verify. Listing algorithms per key is what defeats algorithm confusion:
/// a token's `alg` header is only honoured when this key allows it.
///
/// ```toml
/// keys = [
///     { kid = "hs-1", secret = "...", algorithms = ["HS256"] },
///     { jwks = { "$file" = "keys/jwks.json" }, algorithms = ["ES256"] },
///     # fetched at run time through upstream `idp`, refreshed and cached:
///     { jwks_url = "https://idp.example.com/jwks.json", upstream = "idp", algorithms = ["RS256"] },
///     { issuer_discovery = true, issuer = "https://sso.example.com/realms/main",
///       upstream = "sso", algorithms = ["RS256"], max_refresh_seconds = 3600 },
/// ]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    #[serde(default)]
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_base64: Option<String>,
    #[serde(default)]
    pub pem: Option<String>,
    #[serde(default)]
    pub jwks: Option<String>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub issuer_discovery: bool,
    /// The issuer whose discovery document names the JWKS; defaults to the
    /// plugin's `issuers` when it lists exactly one.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The gateway upstream that reaches the URL's host: plugins only reach
    /// configured upstreams.
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub min_refresh_seconds: Option<u64>,
    #[serde(default)]
    pub max_refresh_seconds: Option<u64>,
    #[serde(default)]
    pub max_stale_seconds: Option<u64>,
    #[serde(default)]
    pub unknown_kid_refresh_seconds: Option<u64>,
    #[serde(default)]
    pub retry_seconds: Option<u64>,
    #[serde(default)]
    pub fetch_timeout_ms: Option<u32>,
}

impl KeyConfig {
    /// Whether the entry names a remote source (then its other remote
    /// fields are checked by [`crate::remote::Source::new`]).
    pub fn is_remote(&self) -> bool {
        self.jwks_url.is_some() || self.issuer_discovery
    }

    /// The first remote-only field set, to refuse it on a fixed key.
    fn stray_field(&self) -> Option<&'static str> {
        [
            ("issuer", self.issuer.is_some()),
            ("upstream", self.upstream.is_some()),
            ("min_refresh_seconds", self.min_refresh_seconds.is_some()),
            ("max_refresh_seconds", self.max_refresh_seconds.is_some()),
            ("max_stale_seconds", self.max_stale_seconds.is_some()),
            ("unknown_kid_refresh_seconds", self.unknown_kid_refresh_seconds.is_some()),
            ("retry_seconds", self.retry_seconds.is_some()),
            ("fetch_timeout_ms", self.fetch_timeout_ms.is_some()),
        ]
        .into_iter()
        .find_map(|(field, set)| set.then_some(field))
    }
}

/// A usable verification key.
#[derive(Debug)]
pub struct Key {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub decoding: DecodingKey,
}

/// One config entry gives one key, or several for a JWKS; each comes with
/// the name its errors use.
pub fn parse_entry(name: &str, config: KeyConfig) -> Result<Vec<(String, Key)>, String> {
    if config.algorithms.is_empty() {
        return Err(format!("{name}: `algorithms` must list at least one algorithm"));
    }
    if let Some(field) = config.stray_field() {
        return Err(format!("{name}: `{field}` only applies to keys fetched with `jwks_url` or `issuer_discovery`"));
    }
    let KeyConfig { kid, algorithms, secret, secret_base64, pem, jwks, .. } = config;
    let single = |decoding: DecodingKey| {
        check_key(name, &decoding, &algorithms)?;
        let key = Key { kid: kid.clone(), algorithms: algorithms.clone(), decoding };
        Ok(vec![(name.to_owned(), key)])
    };
    match (secret, secret_base64, pem, jwks) {
        (Some(secret), None, None, None) => {
            if secret.contains("-----BEGIN") {
                return Err(format!(
                    "{name}: `secret` holds a PEM key; public keys go in `pem`, \
                     and using one as an HMAC secret would let anyone forge tokens"
                ));
            }
            single(DecodingKey::from_secret(secret.as_bytes()))
        }
        (None, Some(secret), None, None) => single(
            DecodingKey::from_base64_secret(secret.trim())
                .map_err(|e| format!("{name}: `secret_base64` is not standard base64: {e}"))?,
        ),
        (None, None, Some(pem), None) => single(pem_key(name, &pem)?),
        (None, None, None, Some(jwks)) => {
            if kid.is_some() {
                return Err(format!("{name}: `kid` cannot be set on a JWKS entry: each JWK carries its own"));
            }
            let set =
                parse_jwks(&format!("{name}.jwks"), &jwks, &algorithms).map_err(|e| format!("{name}: `jwks` {e}"))?;
            if let Some(invalid) = set.invalid.into_iter().next() {
                return Err(invalid);
            }
            if set.keys.is_empty() {
                return Err(format!("{name}: the JWKS {}", no_usable_key(&algorithms, &set.skipped)));
            }
            for reason in set.skipped {
                log::warn(format!("jwt-auth: skipping {reason}"));
            }
            Ok(set.keys)
        }
        _ => Err(format!(
            "{name}: give exactly one of `secret`, `secret_base64`, `pem`, `jwks`, `jwks_url` or `issuer_discovery`"
        )),
    }
}

/// PEM files do not say which algorithm family they are for, so each
/// family's parser is tried in turn.
fn pem_key(name: &str, pem: &str) -> Result<DecodingKey, String> {
    if pem.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{name}: `pem` holds a private key; give the public key (`openssl pkey -pubout`), \
             and keep the private one away from the gateway"
        ));
    }
    let pem = pem.as_bytes();
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| format!("{name}: `pem` is not a PEM public key (RSA, EC P-256/P-384 or Ed25519)"))
}

/// The signing keys of a JWK Set, each with the name its messages use
/// (`<name>.keys[<i>] (kid "...")`), and the entries left out.
#[derive(Debug, Default)]
pub struct JwkSet {
    pub keys: Vec<(String, Key)>,
    /// Entries that are not supported JWKs, or that none of the configured
    /// algorithms fit: a provider's full JWKS can be used as published,
    /// with `algorithms` saying which of its keys to trust.
    pub skipped: Vec<String>,
    /// Keys that are refused outright (an RSA key under 2048 bits, a point
    /// off its curve…): a load error in the config, skipped when fetched.
    pub invalid: Vec<String>,
}

/// Reads a JWK Set. Keys for encryption are left out silently. An error
/// (completing "`jwks` …" or "the document …") only when the text is not a
/// JWK Set at all, or has more than [`MAX_JWKS_KEYS`] entries.
pub fn parse_jwks(name: &str, jwks: &str, algorithms: &[Algorithm]) -> Result<JwkSet, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_str(jwks).map_err(|e| format!("is not a JWK Set ({{\"keys\": [...]}}): {e}"))?;
    if set.keys.len() > MAX_JWKS_KEYS {
        return Err(format!("has {} keys; at most {MAX_JWKS_KEYS} are accepted", set.keys.len()));
    }
    let mut parsed = JwkSet::default();
    for (j, value) in set.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        let jwk_name = match &kid {
            Some(kid) => format!("{name}.keys[{j}] (kid {kid:?})"),
            None => format!("{name}.keys[{j}]"),
        };
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                parsed.skipped.push(format!("{jwk_name}: not a supported JWK: {e}"));
                continue;
            }
        };
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let accepted = jwk_algorithms(&jwk, algorithms);
        if accepted.is_empty() {
            parsed.skipped.push(format!("{jwk_name}: none of the algorithms {} fits it", list(algorithms)));
            continue;
        }
        let checked = DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("{jwk_name}: invalid JWK: {e}"))
            .and_then(|decoding| check_key(&jwk_name, &decoding, &accepted).map(|()| decoding));
        match checked {
            Ok(decoding) => parsed.keys.push((jwk_name, Key { kid, algorithms: accepted, decoding })),
            Err(e) => parsed.invalid.push(e),
        }
    }
    Ok(parsed)
}

/// Why a JWK Set gave no key, after "the JWKS" or "the document".
pub fn no_usable_key(algorithms: &[Algorithm], left_out: &[String]) -> String {
    format!(
        "has no signing key usable with {}{}",
        list(algorithms),
        left_out.iter().map(|s| format!("; {s}")).collect::<String>()
    )
}

/// The configured algorithms this JWK can verify: those of its type and
/// curve, narrowed to its own `alg` when it pins one.
fn jwk_algorithms(jwk: &Jwk, algorithms: &[Algorithm]) -> Vec<Algorithm> {
    let fits: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::OctetKey(_) => AlgorithmFamily::Hmac.algorithms(),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => &[],
        },
    };
    let pinned = jwk.common.key_algorithm.map(|alg| alg.to_string().parse::<Algorithm>());
    algorithms
        .iter()
        .copied()
        .filter(|alg| fits.contains(alg))
        .filter(|alg| match &pinned {
            None => true,
            Some(Ok(pinned)) => pinned == alg,
            Some(Err(_)) => false,
        })
        .collect()
}

/// Refuses algorithms of another family (an RSA key never verifies HMAC
/// tokens) and key material the crypto would reject — or, for a short
/// Ed25519 key, panic on — when the first token arrives.
fn check_key(name: &str, key: &DecodingKey, algorithms: &[Algorithm]) -> Result<(), String> {
    let family = key.family();
    if let Some(alien) = algorithms.iter().find(|alg| alg.family() != family) {
        return Err(format!(
            "{name}: {} accepts only {}, not {alien:?}",
            family_name(family),
            list(family.algorithms())
        ));
    }
    match (family, key.kind()) {
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
            // RFC 7518 §3.2: a secret shorter than the hash output weakens it.
            let strongest = algorithms.iter().map(|alg| min_secret_len(*alg)).max();
            match strongest {
                Some(min) if secret.len() < min => Err(format!(
                    "{name}: the secret is {} bytes; {} needs at least {min} (RFC 7518 §3.2)",
                    secret.len(),
                    list(algorithms)
                )),
                _ => Ok(()),
            }
        }
        (AlgorithmFamily::Rsa, kind) => {
            let parsed = match kind {
                DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_pkcs1_der(der).map_err(|e| e.to_string()),
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).map_err(|e| e.to_string())
                }
            };
            let parsed = parsed.map_err(|e| format!("{name}: not a valid RSA public key: {e}"))?;
            let bits = parsed.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("{name}: the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"));
            }
            Ok(())
        }
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(bytes)) if bytes.len() != 32 => {
            Err(format!("{name}: an Ed25519 public key is 32 bytes, this one {}", bytes.len()))
        }
        _ => {
            // Building the verifier parses the curve point for that
            // algorithm: a P-384 key listed for ES256 fails here.
            for alg in algorithms {
                jsonwebtoken::crypto::verify("AAAA", b"probe", key, *alg)
                    .map_err(|_| format!("{name}: {alg:?} needs {}, and this is not one", curve_key(*alg)))?;
            }
            Ok(())
        }
    }
}

fn curve_key(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "a P-256 key",
        Algorithm::ES384 => "a P-384 key",
        _ => "an Ed25519 key",
    }
}

fn min_secret_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn family_name(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Hmac => "an HMAC secret",
        AlgorithmFamily::Rsa => "an RSA key",
        AlgorithmFamily::Ec => "an EC key",
        AlgorithmFamily::Ed => "an Ed25519 key",
    }
}

fn list(algorithms: &[Algorithm]) -> String {
    algorithms.iter().map(|alg| format!("{alg:?}")).collect::<Vec<_>>().join(", ")
}
