#![doc = include_str!("../README.md")]

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
