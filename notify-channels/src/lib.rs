//! # notify-channels
//!
//! Ways out of the browser for `notify-core`'s escalations ([`notify_core::escalation`]):
//!
//! - [`EmailChannel`]: SMTP through `lettre` (`smtp://` with STARTTLS when offered,
//!   `smtps://user:pass@host` with implicit TLS; rustls), a ko/en template with the title,
//!   the message and an absolute link;
//! - [`WebhookChannel`]: a JSON POST signed with HMAC-SHA256 in `X-Notify-Signature`,
//!   retried with backoff, and a [`DeadLetters`] record when it keeps failing.
//!
//! They live here rather than in core because they bring network clients (lettre, reqwest)
//! that an embedder who does not escalate should not have to build.

mod dead_letters;
mod email;
pub mod signature;
mod smtp_url;
pub mod template;
mod webhook;

pub use dead_letters::{DeadLetter, DeadLetters, JsonlDeadLetters, MemoryDeadLetters};
pub use email::EmailChannel;
pub use smtp_url::SmtpSettings;
pub use template::Lang;
pub use webhook::{WebhookChannel, WebhookConfig};
