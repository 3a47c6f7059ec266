//! Collecting the Khronos validation layer's messages through `VK_EXT_debug_utils`, so that
//! tests and `--validate` runs can fail on any of them.

use ash::vk;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// The Khronos validation layer's name.
pub const VALIDATION_LAYER: &std::ffi::CStr = c"VK_LAYER_KHRONOS_validation";

type Messages = Arc<Mutex<Vec<String>>>;

/// A place the validation layer's warnings and errors are collected in.
pub struct ValidationLog {
    messages: Messages,
    // The callback's user data: boxed so its address stays put for the instance's life.
    user_data: Box<Messages>,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

unsafe extern "system" fn collect(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // A panic must not unwind into the validation layer.
    let _ = std::panic::catch_unwind(|| {
        if !types.contains(vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION) {
            return;
        }
        // SAFETY: the layer passes valid callback data and the user pointer we gave it.
        let (data, messages) = unsafe { (&*data, &*(user as *const Messages)) };
        let text = unsafe { data.message_as_c_str() }.map_or_else(String::new, |m| m.to_string_lossy().into_owned());
        eprintln!("validation {severity:?}: {text}");
        if let Ok(mut m) = messages.lock() {
            m.push(text);
        }
    });
    vk::FALSE
}

impl Default for ValidationLog {
    fn default() -> Self {
        let messages = Messages::default();
        ValidationLog { user_data: Box::new(messages.clone()), messages, messenger: None }
    }
}

impl ValidationLog {
    /// The messenger description to chain on `VkInstanceCreateInfo` (catches messages of
    /// instance creation) and to create the messenger with.
    pub fn create_info(&self) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
        let mut info = vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::WARNING | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
            )
            .message_type(vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION)
            .pfn_user_callback(Some(collect));
        info.p_user_data = &*self.user_data as *const Messages as *mut c_void;
        info
    }

    /// Creates the messenger on an instance that enabled `VK_EXT_debug_utils`.
    pub fn install(&mut self, entry: &ash::Entry, instance: &ash::Instance) -> Result<(), vk::Result> {
        let du = ash::ext::debug_utils::Instance::new(entry, instance);
        // SAFETY: valid instance and create info; the user data outlives the messenger.
        let m = unsafe { du.create_debug_utils_messenger(&self.create_info(), None) }?;
        self.messenger = Some((du, m));
        Ok(())
    }

    /// Destroys the messenger; call before destroying the instance.
    pub fn uninstall(&mut self) {
        if let Some((du, m)) = self.messenger.take() {
            // SAFETY: created by `install` on a live instance.
            unsafe { du.destroy_debug_utils_messenger(m, None) };
        }
    }

    /// The messages seen so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// A handle on the messages that stays valid after the log is gone.
    pub fn shared(&self) -> Arc<Mutex<Vec<String>>> {
        self.messages.clone()
    }
}
