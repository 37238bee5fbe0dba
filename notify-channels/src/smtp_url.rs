//! [`SmtpSettings`]: `NOTIFY_SMTP_URL` parsed (`smtp://[user:pass@]host[:port]`,
//! `smtps://user:pass@host[:port]`).

use notify_core::{Error, Result};

/// The variable named in configuration errors.
const VARIABLE: &str = "NOTIFY_SMTP_URL";

/// How to reach the SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Host name (also the TLS server name).
    pub host: String,
    /// Port: default 587 for `smtp://`, 465 for `smtps://`.
    pub port: u16,
    /// `smtps://`: TLS from the first byte. Otherwise STARTTLS when the server offers it.
    pub implicit_tls: bool,
    /// `smtp://` only: refuse to send without STARTTLS (`?tls=required`).
    pub require_starttls: bool,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
    /// Extra trusted root certificate (PEM), for servers with a private CA.
    pub root_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("require_starttls", &self.require_starttls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl SmtpSettings {
    /// Parses the URL; errors name `NOTIFY_SMTP_URL`.
    pub fn parse(s: &str) -> Result<Self> {
        let url =
            url::Url::parse(s).map_err(|e| Error::config(VARIABLE, format!("not a URL: {e}")))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(Error::config(
                    VARIABLE,
                    format!("scheme {other:?} (expected smtp or smtps)"),
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::config(VARIABLE, "has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
        let mut require_starttls = false;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "required") => require_starttls = true,
                ("tls", "opportunistic") => {}
                (k, v) => {
                    return Err(Error::config(
                        VARIABLE,
                        format!("unknown parameter {k}={v} (only tls=required|opportunistic)"),
                    ))
                }
            }
        }
        Ok(SmtpSettings {
            host,
            port,
            implicit_tls,
            require_starttls,
            credentials,
            root_pem: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes() {
        let s = SmtpSettings::parse("smtps://me%40corp:p%3Ass@mail.example.com").unwrap();
        assert!(s.implicit_tls);
        assert_eq!(s.port, 465);
        assert_eq!(
            s.credentials,
            Some(("me@corp".to_string(), "p:ss".to_string()))
        );
        assert!(!format!("{s:?}").contains("p:ss"), "password not printed");
        let s = SmtpSettings::parse("smtp://127.0.0.1:1025").unwrap();
        assert!(!s.implicit_tls);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1025));
        assert_eq!(s.credentials, None);
        assert!(
            SmtpSettings::parse("smtp://h?tls=required")
                .unwrap()
                .require_starttls
        );
        for bad in ["http://h", "smtp://", "nonsense", "smtp://h?x=1"] {
            let e = SmtpSettings::parse(bad).unwrap_err();
            assert!(e.to_string().contains("NOTIFY_SMTP_URL"), "{bad}: {e}");
        }
    }
}
