#![doc = include_str!("../README.md")]

mod codec;
mod errors;
mod store;

pub use mongodb;
pub use store::{MongoOptions, MongoStore, NOTIFICATIONS, READS, READ_MARKS};
