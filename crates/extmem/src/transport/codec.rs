//! The wire format's field reader, shared by the message, resource and pool bodies
//! ([`super::message`], `resource_wire`, `pool_wire`), so that none of them reaches into another
//! for it; and the limits every body checks against.

use crate::error::{Error, Result};

/// The largest allocation a descriptor may describe (1 TiB).
pub const MAX_ALLOCATION: u64 = 1 << 40;

/// A malformed message, the field named in `detail`.
pub(super) fn bad(detail: impl Into<String>) -> Error {
    Error::Protocol(detail.into())
}

/// Reads a message's fields in order, each named for the error when it is missing.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the first byte of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    /// How many bytes were read.
    pub(super) fn position(&self) -> usize {
        self.at
    }
    pub(super) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(format!("truncated at {field} (byte {} of {})", self.at, self.bytes.len())))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    pub(super) fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        Ok(self.take(N, field)?.try_into().expect("length checked"))
    }
    pub(super) fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub(super) fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub(super) fn i32(&mut self, field: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }
    pub(super) fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub(super) fn bool(&mut self, field: &str) -> Result<bool> {
        match self.array::<1>(field)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(bad(format!("{field} is {v}, not 0 or 1"))),
        }
    }
}
