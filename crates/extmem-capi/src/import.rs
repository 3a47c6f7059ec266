//! Every call into the library's import paths, in one place (the library's import API may
//! take a checked descriptor one day: this is the one file to change then).
//!
//! A descriptor the C caller fills in by hand gets the same checks as one that arrived on a
//! socket: it is encoded as the message that would carry it and decoded by the library's
//! strict decoder (docs/src/protocol.md §3, §5), then handed to the library's import, which
//! runs the rest (§3.3: limits, the fd's kind, UUIDs, memory requirements). Nothing is
//! checked twice differently, and nothing here re-implements a rule.

use crate::status::{extmem_status, CResult, Failure};
use extmem_rs::pool::{BlockDesc, PoolImporter, PooledDesc, PooledImport};
use extmem_rs::transport::Message;
use extmem_rs::{Context, Descriptor, Error, SharedMemory};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The wire's checks of a message built from the caller's fields.
fn wire_checked(message: Message, what: &str) -> CResult<Message> {
    Message::decode(&message.encode()).map_err(|e| match e {
        Error::Protocol(detail) => {
            Failure::new(extmem_status::EXTMEM_ERROR_INVALID_DESCRIPTION, format!("{what}: {detail}"))
        }
        other => other.into(),
    })
}

/// Imports shared memory (the library's checked import). `fd` is taken in every case.
pub(crate) fn memory(ctx: &Arc<Context>, desc: &Descriptor, fd: OwnedFd) -> CResult<SharedMemory> {
    let desc = match wire_checked(Message::Share(*desc), "the descriptor")? {
        Message::Share(d) => d,
        _ => unreachable!("a Share decodes as a Share"),
    };
    Ok(SharedMemory::import(ctx, &desc, fd)?)
}

/// Imports a pool's block into `importer`. `fd` is taken in every case.
pub(crate) fn block(importer: &mut PoolImporter, desc: &BlockDesc, fd: OwnedFd) -> CResult<()> {
    let desc = match wire_checked(Message::PoolBlock(*desc), "the block")? {
        Message::PoolBlock(b) => b,
        _ => unreachable!("a PoolBlock decodes as a PoolBlock"),
    };
    Ok(importer.add_block(&desc, fd)?)
}

/// Binds a pooled hand-off's resource in a block imported before.
pub(crate) fn pooled(importer: &mut PoolImporter, desc: &PooledDesc) -> CResult<PooledImport> {
    let desc = match wire_checked(Message::PoolShare(*desc), "the pooled resource")? {
        Message::PoolShare(p) => p,
        _ => unreachable!("a PoolShare decodes as a PoolShare"),
    };
    Ok(importer.bind(&desc)?)
}
