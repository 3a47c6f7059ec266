//! The layer's settings, taken the way Khronos layers take them.
//!
//! Keys (`extmem_external_memory.<key>` in `vk_layer_settings.txt`, `<key>` with
//! `pLayerName = "VK_LAYER_EXTMEM_external_memory"` in `VkLayerSettingsCreateInfoEXT`):
//! - `log_level`: `off` (default), `error` (refused calls), `info` (everything the layer does);
//! - `force_on`: implement the NV extensions even where the driver exposes them itself;
//! - `force_off`: pass every call through untouched and advertise nothing (wins over `force_on`).
//!
//! Sources, later ones overriding earlier ones (the precedence of the Khronos layers): the
//! defaults; `VkLayerSettingsCreateInfoEXT` in `vkCreateInstance`'s chain; the settings file
//! (`$VK_LAYER_SETTINGS_PATH`, a file or the folder holding `vk_layer_settings.txt`, else
//! `vk_layer_settings.txt` in the working folder); the environment: `EXTMEM_LOG` (`1` means
//! `info`) and `EXTMEM_DISABLE_NV=1` (`force_off`), then `VK_EXTMEM_EXTERNAL_MEMORY_LOG_LEVEL`,
//! `VK_EXTMEM_EXTERNAL_MEMORY_FORCE_ON` and `VK_EXTMEM_EXTERNAL_MEMORY_FORCE_OFF`.

use crate::pnext::{self, ChainWithout};
use ash::vk;
use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;

/// How much the layer says on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    #[default]
    Off,
    Error,
    Info,
}

/// The settings of one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub log_level: LogLevel,
    pub force_on: bool,
    pub force_off: bool,
}

/// The key prefix in `vk_layer_settings.txt`: the layer's name less `VK_LAYER_`, lower case.
const FILE_PREFIX: &str = "extmem_external_memory.";
/// The prefix of the environment variables that override single keys.
const ENV_PREFIX: &str = "VK_EXTMEM_EXTERNAL_MEMORY_";

impl Settings {
    /// The settings for an instance created with `p_next`: API, then file, then environment.
    ///
    /// # Safety
    /// `p_next` must be a valid `VkInstanceCreateInfo` chain.
    pub unsafe fn resolve(p_next: *const c_void) -> Settings {
        let mut s = Settings::default();
        // SAFETY: forwarded from the caller.
        for (key, value) in unsafe { api_settings(p_next) } {
            s.set(&key, &value, "VkLayerSettingsCreateInfoEXT");
        }
        if let Some((path, text)) = settings_file() {
            for (key, value) in file_settings(&text) {
                s.set(&key, &value, &path.display().to_string());
            }
        }
        for (key, value) in env_settings(|name| std::env::var(name).ok()) {
            s.set(&key, &value, "the environment");
        }
        s
    }

    /// Applies one key; a bad key or value is reported on stderr and ignored.
    fn set(&mut self, key: &str, value: &str, from: &str) {
        let value = value.trim();
        let ok = match key {
            "log_level" => parse_level(value).map(|l| self.log_level = l).is_some(),
            "force_on" => parse_bool(value).map(|b| self.force_on = b).is_some(),
            "force_off" => parse_bool(value).map(|b| self.force_off = b).is_some(),
            _ => {
                eprintln!(
                    "[extmem-layer] {from}: unknown setting '{key}' ignored (known: log_level, force_on, force_off)"
                );
                return;
            }
        };
        if !ok {
            let expected = if key == "log_level" { "off, error or info" } else { "true or false" };
            eprintln!("[extmem-layer] {from}: {key} = '{value}' ignored: expected {expected}");
        }
    }

    /// Whether the layer implements anything at all for this instance.
    pub fn active(&self) -> bool {
        !self.force_off
    }
}

fn parse_level(v: &str) -> Option<LogLevel> {
    match v.to_ascii_lowercase().as_str() {
        "off" | "0" => Some(LogLevel::Off),
        "error" => Some(LogLevel::Error),
        "info" | "1" => Some(LogLevel::Info),
        _ => None,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" => Some(true),
        "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// The instance chain without a `VkLayerSettingsCreateInfoEXT` whose settings are all this
/// layer's, so that layers and drivers below, which may predate the structure (the 1.3.239
/// validation layer reports it as unknown), never see it. `None`: pass the chain as it is.
///
/// # Safety
/// `p_next` must be a valid chain that outlives the result.
pub unsafe fn chain_without_own_settings(p_next: *const c_void) -> Option<ChainWithout> {
    // SAFETY: forwarded from the caller.
    let node = unsafe { pnext::nodes(p_next) }.find(|&n| {
        // SAFETY: a valid node; the sType names its type.
        if unsafe { (*n).s_type } != vk::StructureType::LAYER_SETTINGS_CREATE_INFO_EXT {
            return false;
        }
        // SAFETY: as above.
        let info = unsafe { &*(n as *const vk::LayerSettingsCreateInfoEXT) };
        if info.p_settings.is_null() || info.setting_count == 0 {
            return false;
        }
        // SAFETY: `setting_count` settings with valid names per the structure's valid usage.
        unsafe { std::slice::from_raw_parts(info.p_settings, info.setting_count as usize) }
            .iter()
            .all(|s| !s.p_layer_name.is_null() && unsafe { CStr::from_ptr(s.p_layer_name) } == crate::LAYER_NAME)
    })?;
    // SAFETY: `node` is in the chain.
    unsafe { ChainWithout::new(p_next, node) }
}

/// The `(key, value)` pairs addressed to this layer in `VkLayerSettingsCreateInfoEXT`, values
/// as text (a `BOOL32` as `true`/`false`, a `STRING` as it is, integers in decimal).
///
/// # Safety
/// `p_next` must be a valid chain.
unsafe fn api_settings(p_next: *const c_void) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: forwarded from the caller.
    for node in unsafe { pnext::nodes(p_next) } {
        // SAFETY: a valid node; the sType names its type.
        if unsafe { (*node).s_type } != vk::StructureType::LAYER_SETTINGS_CREATE_INFO_EXT {
            continue;
        }
        // SAFETY: as above.
        let info = unsafe { &*(node as *const vk::LayerSettingsCreateInfoEXT) };
        if info.p_settings.is_null() {
            continue;
        }
        // SAFETY: `setting_count` settings per the structure's valid usage.
        let settings = unsafe { std::slice::from_raw_parts(info.p_settings, info.setting_count as usize) };
        for s in settings {
            // SAFETY: valid strings per the valid usage.
            let ours = !s.p_layer_name.is_null() && unsafe { CStr::from_ptr(s.p_layer_name) } == crate::LAYER_NAME;
            if !ours || s.p_setting_name.is_null() || s.p_values.is_null() || s.value_count == 0 {
                continue;
            }
            // SAFETY: as above.
            let key = unsafe { CStr::from_ptr(s.p_setting_name) }.to_string_lossy().into_owned();
            // SAFETY: `p_values` holds `value_count` values of type `ty`; the first is read.
            if let Some(value) = unsafe { first_value(s.ty, s.p_values) } {
                out.push((key, value));
            }
        }
    }
    out
}

/// The first value of a setting as text.
///
/// # Safety
/// `values` must point to at least one value of type `ty`.
unsafe fn first_value(ty: vk::LayerSettingTypeEXT, values: *const c_void) -> Option<String> {
    use vk::LayerSettingTypeEXT as T;
    // SAFETY: the type says what `values` points to.
    unsafe {
        Some(match ty {
            T::BOOL32 => (*(values as *const vk::Bool32) != 0).to_string(),
            T::INT32 => (*(values as *const i32)).to_string(),
            T::UINT32 => (*(values as *const u32)).to_string(),
            T::INT64 => (*(values as *const i64)).to_string(),
            T::UINT64 => (*(values as *const u64)).to_string(),
            T::STRING => {
                let p = *(values as *const *const c_char);
                if p.is_null() {
                    return None;
                }
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
            _ => return None,
        })
    }
}

/// The settings file and its text, where there is one.
fn settings_file() -> Option<(PathBuf, String)> {
    let path = match std::env::var_os("VK_LAYER_SETTINGS_PATH").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_dir() {
                p.join("vk_layer_settings.txt")
            } else {
                p
            }
        }
        None => PathBuf::from("vk_layer_settings.txt"),
    };
    let text = std::fs::read_to_string(&path).ok()?;
    Some((path, text))
}

/// The `(key, value)` pairs of this layer in a settings file's text
/// (`extmem_external_memory.key = value` lines, `#` comments).
fn file_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.trim().strip_prefix(FILE_PREFIX)?.to_owned(), v.trim().to_owned())))
        .collect()
}

/// The `(key, value)` pairs the environment gives, in order of precedence (later wins).
fn env_settings(var: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(v) = var("EXTMEM_LOG").filter(|v| !v.is_empty()) {
        out.push(("log_level".into(), v));
    }
    if var("EXTMEM_DISABLE_NV").as_deref() == Some("1") {
        out.push(("force_off".into(), "true".into()));
    }
    for key in ["log_level", "force_on", "force_off"] {
        if let Some(v) = var(&format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())) {
            out.push((key.into(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(pairs: Vec<(String, String)>, mut s: Settings) -> Settings {
        for (k, v) in pairs {
            s.set(&k, &v, "test");
        }
        s
    }

    #[test]
    fn file_lines_of_this_layer_only() {
        let text = "# comment\nkhronos_validation.log_filename = x\nextmem_external_memory.log_level = info # why\n\
                    extmem_external_memory.force_off=true\n";
        let s = apply(file_settings(text), Settings::default());
        assert_eq!(s, Settings { log_level: LogLevel::Info, force_on: false, force_off: true });
    }

    #[test]
    fn environment_overrides_earlier_sources() {
        let file = apply(file_settings("extmem_external_memory.force_off = true\n"), Settings::default());
        let env = |name: &str| match name {
            "VK_EXTMEM_EXTERNAL_MEMORY_FORCE_OFF" => Some("false".to_owned()),
            "EXTMEM_LOG" => Some("1".to_owned()),
            _ => None,
        };
        let s = apply(env_settings(env), file);
        assert_eq!(s, Settings { log_level: LogLevel::Info, force_on: false, force_off: false });
        // EXTMEM_DISABLE_NV=1 turns the layer off; the specific variable still wins over it.
        let off = apply(env_settings(|n| (n == "EXTMEM_DISABLE_NV").then(|| "1".to_owned())), Settings::default());
        assert!(!off.active());
    }

    #[test]
    fn bad_values_are_ignored() {
        let s = apply(
            vec![("log_level".into(), "loud".into()), ("force_on".into(), "maybe".into()), ("nope".into(), "1".into())],
            Settings::default(),
        );
        assert_eq!(s, Settings::default());
    }
}
