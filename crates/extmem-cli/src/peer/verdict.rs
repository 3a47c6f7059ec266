//! A consumer's failure: said to the producer (a Verdict it can report) and on stderr.

use crate::support::error::Result;
use extmem::transport::{Channel, Message};
use std::process::ExitCode;

/// Sends the failing verdict `detail`, prints it, and ends the consumer with a failure.
pub fn fail(channel: &Channel, detail: String) -> Result<ExitCode> {
    let _ = channel.send(&Message::Verdict { ok: false, detail: detail.clone() }, &[]);
    eprintln!("[consumer] FAIL: {detail}");
    Ok(ExitCode::FAILURE)
}

/// Tells the producer that this consumer failed with `error` (best effort: the producer may be
/// gone already, which is often why it failed).
pub fn tell(channel: &Channel, error: &impl std::fmt::Display) {
    let _ = channel.send(&Message::Verdict { ok: false, detail: error.to_string() }, &[]);
}
