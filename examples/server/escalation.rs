//! Escalation settings (contract section 7: `NOTIFY_SMTP_URL`, `NOTIFY_EMAIL_FROM`,
//! `NOTIFY_WEBHOOK_URL`, `NOTIFY_WEBHOOK_SECRET`) and the channels and worker they start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use notify_channels::{
    DeadLetters, EmailChannel, JsonlDeadLetters, Lang, MemoryDeadLetters, SmtpSettings,
    WebhookChannel, WebhookConfig,
};
use notify_core::escalation::{Channel, Escalator, EscalatorConfig, EscalatorHandle};
use notify_core::{Error, NotifyService, Result};

/// Escalation flags; each falls back to its environment variable.
#[derive(Debug, Clone, Args)]
pub(crate) struct EscalationArgs {
    /// SMTP server for e-mail escalation and digests (`smtp://host:port`,
    /// `smtps://user:pass@host`; `?tls=required` forces STARTTLS).
    #[arg(long, env = "NOTIFY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Extension: PEM file of a private CA to trust for the SMTP server's certificate
    /// (besides the system's roots).
    #[arg(long, env = "NOTIFY_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Sender address of escalation e-mails.
    #[arg(long, env = "NOTIFY_EMAIL_FROM")]
    pub email_from: Option<String>,
    /// Claim of the token with the user's e-mail address.
    #[arg(long, env = "NOTIFY_JWT_EMAIL_CLAIM", default_value = "email")]
    pub jwt_email_claim: String,
    /// Every escalation is also POSTed here, signed.
    #[arg(long, env = "NOTIFY_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the webhook signature (`X-Notify-Signature`).
    #[arg(long, env = "NOTIFY_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Extension: JSON-lines file for webhook deliveries that keep failing (default: log).
    #[arg(long, env = "NOTIFY_WEBHOOK_DEAD_LETTERS")]
    pub webhook_dead_letters: Option<PathBuf>,
    /// Extension: language of e-mails, `en` or `ko`.
    #[arg(long, env = "NOTIFY_EMAIL_LANG", default_value = "en")]
    pub email_lang: String,
    /// Extension: public URL of the application, to make notification links absolute in
    /// e-mails (default: `http://<NOTIFY_LISTEN>`).
    #[arg(long, env = "NOTIFY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Extension: how often the due escalations are polled (`1s`, `500ms`).
    #[arg(long, env = "NOTIFY_ESCALATION_POLL", default_value = "1s")]
    pub escalation_poll: String,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_poll(s: &str) -> Result<Duration> {
    let s = s.trim();
    let bad = || {
        Error::config(
            "NOTIFY_ESCALATION_POLL",
            format!("invalid duration {s:?} (use e.g. 1s or 500ms)"),
        )
    };
    let d = if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else {
        Duration::from_secs(s.trim_end_matches('s').parse().map_err(|_| bad())?)
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

/// The validated escalation setup: the channels, and the worker's tuning.
pub(crate) struct Escalation {
    channels: Vec<Arc<dyn Channel>>,
    poll: Duration,
    /// The token claim with the e-mail address.
    pub email_claim: String,
}

impl Escalation {
    /// Validates the flags; errors name the variable. `listen` is the default public URL.
    pub(crate) fn from_args(args: &EscalationArgs, listen: std::net::SocketAddr) -> Result<Self> {
        let mut channels: Vec<Arc<dyn Channel>> = Vec::new();
        let lang = Lang::parse(args.email_lang.trim())
            .ok_or_else(|| Error::config("NOTIFY_EMAIL_LANG", "must be en or ko"))?;
        let public_url = non_empty(&args.public_url)
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{listen}"));
        match (non_empty(&args.smtp_url), non_empty(&args.email_from)) {
            (Some(url), Some(from)) => {
                let mut settings = SmtpSettings::parse(url)?;
                if let Some(path) = &args.smtp_ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        Error::config(
                            "NOTIFY_SMTP_CA_FILE",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                    settings.root_pem = Some(pem);
                }
                channels.push(Arc::new(EmailChannel::new(
                    &settings,
                    from,
                    lang,
                    &public_url,
                )?));
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "NOTIFY_EMAIL_FROM",
                    "is required with NOTIFY_SMTP_URL",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "NOTIFY_SMTP_URL",
                    "is required with NOTIFY_EMAIL_FROM",
                ))
            }
            (None, None) => {}
        }
        if let Some(url) = non_empty(&args.webhook_url) {
            let secret = non_empty(&args.webhook_secret).ok_or_else(|| {
                Error::config(
                    "NOTIFY_WEBHOOK_SECRET",
                    "is required with NOTIFY_WEBHOOK_URL",
                )
            })?;
            let dead: Arc<dyn DeadLetters> = match &args.webhook_dead_letters {
                Some(path) => Arc::new(JsonlDeadLetters::new(path.clone())),
                None => Arc::new(MemoryDeadLetters::new()),
            };
            channels.push(Arc::new(WebhookChannel::new(
                url,
                secret.as_bytes(),
                WebhookConfig::default(),
                dead,
            )?));
        } else if non_empty(&args.webhook_secret).is_some() {
            return Err(Error::config(
                "NOTIFY_WEBHOOK_URL",
                "is required with NOTIFY_WEBHOOK_SECRET",
            ));
        }
        Ok(Escalation {
            channels,
            poll: parse_poll(&args.escalation_poll)?,
            email_claim: args.jwt_email_claim.trim().to_string(),
        })
    }

    /// True when at least one channel is configured.
    pub(crate) fn enabled(&self) -> bool {
        !self.channels.is_empty()
    }

    /// The channel names, for the start-up log.
    pub(crate) fn names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name().to_string()).collect()
    }

    /// Starts the worker (when any channel is configured).
    pub(crate) fn spawn(
        &self,
        service: Arc<NotifyService>,
        instance: String,
    ) -> Option<EscalatorHandle> {
        self.enabled().then(|| {
            Escalator::new(
                service,
                self.channels.clone(),
                EscalatorConfig {
                    instance,
                    poll: self.poll,
                    ..EscalatorConfig::default()
                },
            )
            .spawn()
        })
    }
}
