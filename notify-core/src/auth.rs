//! Authentication: JWT (HS256, RS256, ES256) with `sub`, a configurable groups claim, a
//! mandatory `exp`, `nbf` honoured, and `aud` / `iss` enforced when configured; and the
//! publisher API key.

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
    /// The e-mail claim (`NOTIFY_JWT_EMAIL_CLAIM`), when the token has one; escalation
    /// e-mails go to the address from the user's last connection.
    pub email: Option<String>,
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
    email_claim: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("groups_claim", &self.groups_claim)
            .field("email_claim", &self.email_claim)
            .finish()
    }
}

/// Shortest HS256 secret accepted outside demo mode: RFC 7518, section 3.2, wants a key at
/// least as long as the hash output (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_exp = true;
    // A token that is not valid yet must not open a session early.
    v.validate_nbf = true;
    // Small clock skew allowance; an expired token must really be refused.
    v.leeway = 5;
    v.validate_aud = false;
    v
}

impl Authenticator {
    /// HS256 with a shared secret (`NOTIFY_JWT_SECRET`), refusing secrets shorter than
    /// [`MIN_HS256_SECRET_BYTES`] with an [`Error::Config`] naming `NOTIFY_JWT_SECRET`.
    pub fn hs256_checked(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(Error::config(
                "NOTIFY_JWT_SECRET",
                format!(
                    "an HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes (RFC 7518, 3.2); this one has {}",
                    secret.len()
                ),
            ));
        }
        Ok(Self::hs256(secret))
    }

    /// HS256 with a shared secret of any length: for demo mode, tests and tools. Services
    /// configured by operators use [`Authenticator::hs256_checked`].
    pub fn hs256(secret: &[u8]) -> Self {
        Authenticator {
            key: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256),
            groups_claim: "groups".into(),
            email_claim: "email".into(),
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
            email_claim: "email".into(),
        })
    }

    /// Requires tokens to carry this audience in `aud` (`NOTIFY_JWT_AUDIENCE`).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.validation.set_audience(&[audience.into()]);
        self.validation.validate_aud = true;
        self.require_claim("aud");
        self
    }

    /// Requires tokens to carry this issuer in `iss` (`NOTIFY_JWT_ISSUER`).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.validation.set_issuer(&[issuer.into()]);
        self.require_claim("iss");
        self
    }

    /// True when tokens are checked against an audience and an issuer.
    pub fn checks_audience_and_issuer(&self) -> bool {
        self.validation.aud.is_some() && self.validation.iss.is_some()
    }

    /// True for a public-key (RS256/ES256) verifier.
    pub fn uses_public_key(&self) -> bool {
        !self.validation.algorithms.contains(&Algorithm::HS256)
    }

    fn require_claim(&mut self, claim: &str) {
        self.validation
            .required_spec_claims
            .insert(claim.to_string());
    }

    /// Uses another claim for the user's groups (`NOTIFY_JWT_GROUPS_CLAIM`).
    pub fn with_groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = claim.into();
        self
    }

    /// Uses another claim for the user's e-mail address (`NOTIFY_JWT_EMAIL_CLAIM`).
    pub fn with_email_claim(mut self, claim: impl Into<String>) -> Self {
        self.email_claim = claim.into();
        self
    }

    /// Verifies a token (signature, algorithm, `exp`, `sub`) and reads the groups claim.
    pub fn verify(&self, token: &str) -> Result<Principal> {
        let data = jsonwebtoken::decode::<Value>(token.trim(), &self.key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired".to_string(),
                    ErrorKind::ImmatureSignature => "token not valid yet (nbf)".to_string(),
                    ErrorKind::InvalidAudience => "token audience (aud) not accepted".to_string(),
                    ErrorKind::InvalidIssuer => "token issuer (iss) not accepted".to_string(),
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
        // An e-mail claim that is not a plausible address is ignored, not an auth failure:
        // it only matters for escalation.
        let email = claims
            .get(&self.email_claim)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|e| e.len() <= 254 && e.contains('@') && !e.chars().any(char::is_control))
            .map(str::to_string);
        Ok(Principal {
            user,
            groups,
            email,
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

    fn sign(secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let auth = Authenticator::hs256(b"k");
        let now = Utc::now().timestamp();
        let later = sign(
            b"k",
            serde_json::json!({"sub":"bob","exp":now+600,"nbf":now+300}),
        );
        let err = auth.verify(&later).unwrap_err();
        assert!(err.to_string().contains("nbf"), "{err}");
        let past = sign(
            b"k",
            serde_json::json!({"sub":"bob","exp":now+600,"nbf":now-10}),
        );
        assert!(auth.verify(&past).is_ok());
    }

    #[test]
    fn audience_and_issuer_are_enforced_when_set() {
        let now = Utc::now().timestamp();
        let auth = Authenticator::hs256(b"k")
            .with_audience("notify")
            .with_issuer("https://idp.example");
        assert!(auth.checks_audience_and_issuer());
        let good = sign(
            b"k",
            serde_json::json!({"sub":"a","exp":now+60,"aud":"notify","iss":"https://idp.example"}),
        );
        assert_eq!(auth.verify(&good).unwrap().user, "a");
        let list_aud = sign(
            b"k",
            serde_json::json!({"sub":"a","exp":now+60,"aud":["other","notify"],"iss":"https://idp.example"}),
        );
        assert!(auth.verify(&list_aud).is_ok());
        for (claims, why) in [
            (
                serde_json::json!({"sub":"a","exp":now+60,"aud":"other","iss":"https://idp.example"}),
                "aud",
            ),
            (
                serde_json::json!({"sub":"a","exp":now+60,"iss":"https://idp.example"}),
                "aud",
            ),
            (
                serde_json::json!({"sub":"a","exp":now+60,"aud":"notify","iss":"https://evil.example"}),
                "iss",
            ),
            (
                serde_json::json!({"sub":"a","exp":now+60,"aud":"notify"}),
                "iss",
            ),
        ] {
            let err = auth.verify(&sign(b"k", claims.clone())).unwrap_err();
            assert!(matches!(err, Error::Unauthorized { .. }), "{claims}");
            assert!(err.to_string().contains(why), "{claims}: {err}");
        }
        // Unset: any audience and issuer pass.
        let open = Authenticator::hs256(b"k");
        assert!(!open.checks_audience_and_issuer());
        assert!(open
            .verify(&sign(
                b"k",
                serde_json::json!({"sub":"a","exp":now+60,"aud":"x","iss":"y"})
            ))
            .is_ok());
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        let err = Authenticator::hs256_checked(b"e2e-secret").unwrap_err();
        assert_eq!(err.field(), Some("NOTIFY_JWT_SECRET"));
        assert!(Authenticator::hs256_checked(&[b'x'; 32]).is_ok());
        assert!(!Authenticator::hs256(b"k").uses_public_key());
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
