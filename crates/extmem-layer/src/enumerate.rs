//! The `pCount` / `pProperties` idiom of Vulkan's enumeration commands.

use ash::vk;

/// Calls an enumeration command twice (count, then fill), retrying while it says `INCOMPLETE`.
///
/// # Safety
/// `f` must be a valid enumeration command bound to its other arguments.
pub unsafe fn two_call<T: Default + Clone>(
    mut f: impl FnMut(*mut u32, *mut T) -> vk::Result,
) -> Result<Vec<T>, vk::Result> {
    loop {
        let mut count = 0u32;
        match f(&mut count, std::ptr::null_mut()) {
            vk::Result::SUCCESS => {}
            e => return Err(e),
        }
        let mut items = vec![T::default(); count as usize];
        match f(&mut count, items.as_mut_ptr()) {
            vk::Result::SUCCESS => {
                items.truncate(count as usize);
                return Ok(items);
            }
            vk::Result::INCOMPLETE => continue,
            e => return Err(e),
        }
    }
}

/// Answers an enumeration command from a list the layer holds.
///
/// # Safety
/// `count` must be valid; `out` null or writable for `*count` elements.
pub unsafe fn answer<T: Copy>(list: &[T], count: *mut u32, out: *mut T) -> vk::Result {
    if count.is_null() {
        return vk::Result::ERROR_VALIDATION_FAILED_EXT;
    }
    if out.is_null() {
        // SAFETY: checked non-null.
        unsafe { *count = list.len() as u32 };
        return vk::Result::SUCCESS;
    }
    // SAFETY: checked non-null; the caller gave room for `*count` elements.
    let room = unsafe { *count } as usize;
    let n = room.min(list.len());
    // SAFETY: `n` elements fit in `out`.
    unsafe {
        std::ptr::copy_nonoverlapping(list.as_ptr(), out, n);
        *count = n as u32;
    }
    if n < list.len() {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }
}
