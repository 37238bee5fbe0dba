//! Authentication: JWT (HS256, RS256, ES256) with `sub`, a configurable groups claim and a
//! mandatory `exp`; and the publisher API key.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::Reader;

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id (`sub`).
    pub user: String,
    /// Groups from the groups claim.
    pub groups: Vec<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl Principal {
    /// The inbox reader for this principal.
    pub fn reader(&self) -> Reader {
        Reader::new(self.user.clone(), self.groups.clone())
    }
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    groups_claim: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("groups_claim", &self.groups_claim)
            .finish()
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_exp = true;
    // Small clock skew allowance; an expired token must really be refused.
    v.leeway = 5;
    v.validate_aud = false;
    v
}

impl Authenticator {
    /// HS256 with a shared secret (`NOTIFY_JWT_SECRET`).
    pub fn hs256(secret: &[u8]) -> Self {
        Authenticator {
            key: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256),
            groups_claim: "groups".into(),
        }
    }

    /// RS256 or ES256 with a PEM public key (`NOTIFY_JWT_PUBLIC_KEY_FILE`); the algorithm
    /// follows the key type.
    pub fn from_public_key_pem(pem: &[u8]) -> Result<Self> {
        let (key, alg) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, Algorithm::RS256)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, Algorithm::ES256)
        } else {
            return Err(Error::config(
                "NOTIFY_JWT_PUBLIC_KEY_FILE",
                "not a PEM RSA or EC (P-256) public key",
            ));
        };
        Ok(Authenticator {
            key,
            validation: validation(alg),
            groups_claim: "groups".into(),
        })
    }

    /// Uses another claim for the user's groups (`NOTIFY_JWT_GROUPS_CLAIM`).
    pub fn with_groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = claim.into();
        self
    }

    /// Verifies a token (signature, algorithm, `exp`, `sub`) and reads the groups claim.
    pub fn verify(&self, token: &str) -> Result<Principal> {
        let data = jsonwebtoken::decode::<Value>(token.trim(), &self.key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired".to_string(),
                    ErrorKind::InvalidSignature => "invalid token signature".to_string(),
                    ErrorKind::MissingRequiredClaim(c) => format!("token lacks the `{c}` claim"),
                    ErrorKind::InvalidAlgorithm => "token algorithm not accepted".to_string(),
                    _ => format!("invalid token: {e}"),
                };
                Error::unauthorized(why)
            })?;
        let claims = data.claims;
        let user = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(Error::unauthorized(
                    "token `sub` must be a non-empty string",
                ))
            }
        };
        let groups = match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(_) => {
                return Err(Error::unauthorized(format!(
                    "token claim `{}` must be an array of strings",
                    self.groups_claim
                )))
            }
        };
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok(Principal {
            user,
            groups,
            expires_at: Utc.timestamp_opt(exp, 0).single().unwrap_or_else(Utc::now),
        })
    }
}

/// Takes the token out of an `Authorization: Bearer …` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares API keys in constant time.
pub fn key_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs an HS256 token: for demo mode, tests and tools; production tokens come from your
/// identity provider.
pub fn sign_hs256(secret: &[u8], user: &str, groups: &[String], ttl_secs: i64) -> String {
    let claims = serde_json::json!({
        "sub": user,
        "groups": groups,
        "iat": Utc::now().timestamp(),
        "exp": Utc::now().timestamp() + ttl_secs,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_good_tokens_and_refuses_bad_ones() {
        let auth = Authenticator::hs256(b"s3cret");
        let token = sign_hs256(b"s3cret", "alice", &["admins".into()], 60);
        let p = auth.verify(&token).unwrap();
        assert_eq!(p.user, "alice");
        assert_eq!(p.groups, vec!["admins"]);

        let forged = sign_hs256(b"other", "alice", &[], 60);
        assert!(matches!(
            auth.verify(&forged),
            Err(Error::Unauthorized { .. })
        ));
        let expired = sign_hs256(b"s3cret", "alice", &[], -120);
        let err = auth.verify(&expired).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        assert!(auth.verify("not.a.token").is_err());
    }

    #[test]
    fn custom_groups_claim() {
        let auth = Authenticator::hs256(b"k").with_groups_claim("roles");
        let claims = serde_json::json!({"sub":"bob","roles":["x"],"exp":Utc::now().timestamp()+60});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(auth.verify(&token).unwrap().groups, vec!["x"]);
    }

    #[test]
    fn token_without_exp_is_refused() {
        let auth = Authenticator::hs256(b"k");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"sub":"bob"}),
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(auth.verify(&token).is_err());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert!(key_matches("k1", "k1"));
        assert!(!key_matches("k1", "k2"));
    }
}
