//! Handing a [`SharedMemory`]'s image or buffer and memory over to the application, which
//! owns them from then on.

use super::{Resource, SharedMemory};
use crate::error::{Error, Result};
use crate::external::{RawMemory, RawResource};
use std::mem::ManuallyDrop;

impl SharedMemory {
    /// Gives the image or buffer and its memory to the application: extmem no longer destroys
    /// them, the application does (after the device is done with them, and before it destroys
    /// the device). What this crate made or imported with every check it does (an exportable
    /// resource from [`SharedMemory::new_image`], an import from [`SharedMemory::import`])
    /// becomes the application's this way; [`crate::external`] exports and hands it off.
    ///
    /// Host-allocation memory stays a `SharedMemory` (it keeps the host pages mapped): an
    /// error says so.
    pub fn into_raw(self) -> Result<RawMemory> {
        if self.host.is_some() {
            return Err(Error::Unsupported(
                "host-allocation memory lives as long as its SharedMemory (which maps its pages)".into(),
            ));
        }
        let raw = RawMemory {
            resource: match self.resource {
                Resource::Image(i, _) => RawResource::Image(i),
                Resource::Buffer(b, _) => RawResource::Buffer(b),
            },
            desc: self.desc(),
            memory: self.memory,
            allocation_size: self.allocation_size,
            memory_type_index: self.memory_type_index,
            dedicated: self.dedicated,
            offset: self.offset,
            handle_type: self.handle_type,
        };
        // The staging buffer is extmem's own: destroyed now, after its last use was waited for.
        drop(self.staging.lock().unwrap_or_else(|e| e.into_inner()).take());
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; the context reference is moved out
        // once and dropped, and the other fields hold nothing to free (`host` is `None`, the
        // staging buffer was taken, the holder is plain data).
        drop(unsafe { std::ptr::read(&this.ctx) });
        Ok(raw)
    }
}
