//! Driver errors into [`notify_core::Error`], keeping the driver error as `source`.

use mongodb::error::{
    Error as DriverError, ErrorKind, WriteFailure, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR,
    SYSTEM_OVERLOADED_ERROR, TRANSIENT_TRANSACTION_ERROR,
};
use notify_core::Error;

/// Duplicate key.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Server codes that mean "the server is (temporarily) not usable": network, shutdown,
/// stepdown, not primary, recovering, interrupted, exceeded time limits, write concern
/// timeout, too many connections.
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    64,    // WriteConcernFailed (wtimeout)
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11601, // Interrupted
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    10058, // LegacyNotPrimary
    462,   // IngressRequestRateLimitExceeded
];

/// Server codes that mean the input cannot be stored as given.
const BAD_INPUT_CODES: &[i32] = &[
    2,     // BadValue
    10334, // BSONObjectTooLarge
    17280, // KeyTooLong
    17419, // document too large (insert)
    121,   // DocumentValidationFailure
];

/// True when the operation may succeed if retried later.
pub(crate) fn is_transient(e: &DriverError) -> bool {
    if [
        RETRYABLE_WRITE_ERROR,
        RETRYABLE_ERROR,
        SYSTEM_OVERLOADED_ERROR,
        TRANSIENT_TRANSACTION_ERROR,
    ]
    .iter()
    .any(|l| e.contains_label(l))
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::Write(WriteFailure::WriteError(w)) => TRANSIENT_CODES.contains(&w.code),
        ErrorKind::InsertMany(m) => m.write_concern_error.is_some(),
        _ => false,
    }
}

fn is_bad_input(e: &DriverError) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InvalidArgument { .. } | ErrorKind::BsonSerialization(_) => true,
        ErrorKind::Command(c) => BAD_INPUT_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => BAD_INPUT_CODES.contains(&w.code),
        _ => false,
    }
}

/// Maps a driver error from operation `op` (e.g. `"insert"`) into the core error type.
pub(crate) fn map(op: &str, e: DriverError) -> Error {
    if is_transient(&e) {
        Error::unavailable("store", format!("mongodb {op} failed: {e}"), e)
    } else if is_bad_input(&e) {
        // The source is not kept here (InvalidInput has no source), so say it in full.
        Error::invalid_body(format!("mongodb {op} rejected the input: {e}"))
    } else {
        Error::internal_from(format!("mongodb {op} failed"), e)
    }
}

/// For an `insert_many` error: `Some(n)` when every write error is a duplicate key (`n` of
/// them), `None` when anything else went wrong.
pub(crate) fn only_duplicates(e: &mongodb::error::Error) -> Option<usize> {
    let ErrorKind::InsertMany(m) = e.kind.as_ref() else {
        return None;
    };
    if m.write_concern_error.is_some() {
        return None;
    }
    let errs = m.write_errors.as_deref().unwrap_or_default();
    errs.iter()
        .all(|w| w.code == DUPLICATE_KEY)
        .then_some(errs.len())
}

pub(crate) fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

pub(crate) fn is_duplicate_write(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}
