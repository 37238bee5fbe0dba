//! [`WebhookChannel`]: escalations POSTed as signed JSON.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use notify_core::escalation::{Channel, Delivery};
use notify_core::{Error, Result};

use crate::dead_letters::{DeadLetter, DeadLetters};
use crate::signature;

/// Tuning of the webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Attempts before the delivery is dead-lettered.
    pub attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// POSTs `{"user","reason","notifications":[…]}` to `NOTIFY_WEBHOOK_URL` with
/// `X-Notify-Signature: sha256=<hex HMAC-SHA256 of the body>` under `NOTIFY_WEBHOOK_SECRET`
/// and `X-Notify-Delivery: <escalation key>` (stable across retries, for de-duplication).
///
/// A 2xx answer is delivered. Connection errors, timeouts, 408, 429 and 5xx are retried
/// with exponential backoff (a `Retry-After` in seconds is honoured up to the longest
/// delay); other 4xx are not retried. What is not delivered goes to the [`DeadLetters`].
pub struct WebhookChannel {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
    config: WebhookConfig,
    dead_letters: Arc<dyn DeadLetters>,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl WebhookChannel {
    /// A webhook to `url` signed with `secret`. Errors name the variable at fault.
    pub fn new(
        url: &str,
        secret: &[u8],
        config: WebhookConfig,
        dead_letters: Arc<dyn DeadLetters>,
    ) -> Result<Self> {
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| Error::config("NOTIFY_WEBHOOK_URL", "must be an http(s) URL"))?;
        if secret.is_empty() {
            return Err(Error::config(
                "NOTIFY_WEBHOOK_SECRET",
                "is required with NOTIFY_WEBHOOK_URL",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config("NOTIFY_WEBHOOK_URL", format!("HTTP client: {e}")))?;
        Ok(WebhookChannel {
            client,
            url,
            secret: secret.to_vec(),
            config,
            dead_letters,
        })
    }

    /// One attempt: `Ok(())`, or the error and whether it is worth retrying (and after how
    /// long the server asked us to wait).
    async fn post(
        &self,
        body: &[u8],
        sig: &str,
        key: &str,
    ) -> std::result::Result<(), (String, bool, Option<Duration>)> {
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header(signature::HEADER, sig)
            .header("x-notify-delivery", key)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| (e.to_string(), true, None))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        Err((format!("HTTP {status}"), retry, retry_after))
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn send(&self, delivery: &Delivery) -> Result<()> {
        let value = delivery.to_json();
        let body = serde_json::to_vec(&value).expect("JSON serializes");
        let sig = signature::sign(&self.secret, &body);
        let mut backoff = self.config.first_backoff;
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            match self.post(&body, &sig, &delivery.key).await {
                Ok(()) => return Ok(()),
                Err((e, retry, retry_after)) => {
                    if !retry || attempt >= self.config.attempts.max(1) {
                        break e;
                    }
                    let wait = retry_after.unwrap_or(backoff).min(self.config.max_backoff);
                    tracing::warn!(key = %delivery.key, attempt, error = %e, retry_in = ?wait, "webhook failed; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        };
        tracing::error!(key = %delivery.key, attempts = attempt, error = %error, "webhook failed; dead-lettered");
        self.dead_letters
            .record(DeadLetter {
                channel: "webhook".into(),
                key: delivery.key.clone(),
                body: value,
                error: error.clone(),
                attempts: attempt,
                at: Utc::now(),
            })
            .await;
        Err(Error::unavailable_because(
            "webhook",
            format!("{error} after {attempt} attempts (dead-lettered)"),
        ))
    }
}
