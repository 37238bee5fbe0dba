//! [`EmailChannel`]: escalations as e-mail over SMTP (lettre, rustls).

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use notify_core::escalation::{Channel, Delivery};
use notify_core::{Error, Result};

use crate::smtp_url::SmtpSettings;
use crate::template::{render, Lang};

/// Sends escalations and digests by e-mail to the address from the user's last connection.
///
/// A user without a remembered address is skipped (logged). A temporary SMTP failure
/// (connection, 4xx) is retried three times with backoff; a permanent one (5xx, e.g. a
/// rejected address) is not.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    lang: Lang,
    link_base: String,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.from.to_string())
            .field("lang", &self.lang)
            .field("link_base", &self.link_base)
            .finish()
    }
}

impl EmailChannel {
    /// A channel for `settings`, sending from `from` (`NOTIFY_EMAIL_FROM`), in `lang`, with
    /// relative links joined to `link_base` (the service's public URL). Errors name the
    /// variable at fault.
    pub fn new(settings: &SmtpSettings, from: &str, lang: Lang, link_base: &str) -> Result<Self> {
        let from: Mailbox = from.parse().map_err(|e| {
            Error::config("NOTIFY_EMAIL_FROM", format!("not an e-mail address: {e}"))
        })?;
        let tls = || -> Result<TlsParameters> {
            let mut b = TlsParameters::builder(settings.host.clone());
            if let Some(pem) = &settings.root_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    Error::config("NOTIFY_SMTP_CA_FILE", format!("not a PEM certificate: {e}"))
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| Error::config("NOTIFY_SMTP_URL", format!("TLS setup: {e}")))
        };
        let tls = if settings.implicit_tls {
            Tls::Wrapper(tls()?)
        } else if settings.require_starttls {
            Tls::Required(tls()?)
        } else {
            Tls::Opportunistic(tls()?)
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(Duration::from_secs(20)));
        if let Some((user, pass)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            from,
            lang,
            link_base: link_base.to_string(),
        })
    }

    fn message(&self, to: Mailbox, delivery: &Delivery) -> Result<Message> {
        let mail = render(delivery, self.lang, &self.link_base);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            // Lets mail clients and tests tie the mail to the escalation.
            .message_id(Some(format!(
                "<{}@notify>",
                delivery.key.replace([':', '<', '>', '@', ' '], ".")
            )))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html),
                    ),
            )
            .map_err(|e| Error::internal(format!("cannot build the e-mail: {e}")))
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &str {
        "email"
    }

    async fn send(&self, delivery: &Delivery) -> Result<()> {
        let Some(address) = &delivery.email else {
            tracing::info!(user = %delivery.user, key = %delivery.key, "no e-mail address remembered for the user; e-mail skipped");
            return Ok(());
        };
        let to: Mailbox = address
            .parse()
            .map_err(|e| Error::invalid("email", format!("{address:?}: {e}")))?;
        let message = self.message(to, delivery)?;
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if !e.is_permanent() && attempt < 4 => {
                    tracing::warn!(key = %delivery.key, attempt, error = %e, "SMTP send failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 4;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::unavailable(
                        "smtp",
                        format!("e-mail to {address} not sent after {attempt} attempts"),
                        e,
                    ))
                }
            }
        }
    }
}
