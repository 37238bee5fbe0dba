#![doc = include_str!("../README.md")]

mod codec;
mod errors;
mod prefs;
mod store;

pub use mongodb;
pub use prefs::{MongoPreferences, ESCALATIONS, ESCALATION_CLAIMS, PROFILES};
pub use store::{MongoOptions, MongoStore, NOTIFICATIONS, READS, READ_MARKS};
