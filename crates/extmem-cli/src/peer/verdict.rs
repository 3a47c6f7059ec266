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
