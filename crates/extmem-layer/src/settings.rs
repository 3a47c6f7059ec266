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
            let from = path.display().to_string();
            let mut warned = 0;
            for (key, value) in file_settings(&text) {
                warned += usize::from(!s.set_quietly(&key, &value, &from, warned >= MAX_FILE_WARNINGS));
            }
            if warned > MAX_FILE_WARNINGS {
                let more = warned - MAX_FILE_WARNINGS;
                eprintln!("[extmem-layer] {from}: {more} more bad line(s) of this layer ignored");
            }
        }
        for (key, value) in env_settings(env_var) {
            match value {
                Ok(value) => s.set(&key, &value, "the environment"),
                Err(name) => eprintln!("[extmem-layer] the environment: {name} ignored: its value is not UTF-8"),
            }
        }
        s
    }

    /// Applies one key; a bad key or value is reported on stderr and ignored.
    fn set(&mut self, key: &str, value: &str, from: &str) {
        self.set_quietly(key, value, from, false);
    }

    /// Applies one key; a bad key or value is ignored, and reported on stderr unless `quiet`.
    /// Returns whether the key and value were good.
    fn set_quietly(&mut self, key: &str, value: &str, from: &str, quiet: bool) -> bool {
        let value = value.trim();
        let ok = match key {
            "log_level" => parse_level(value).map(|l| self.log_level = l).is_some(),
            "force_on" => parse_bool(value).map(|b| self.force_on = b).is_some(),
            "force_off" => parse_bool(value).map(|b| self.force_off = b).is_some(),
            _ => {
                if !quiet {
                    eprintln!(
                        "[extmem-layer] {from}: unknown setting '{}' ignored (known: log_level, force_on, force_off)",
                        key.escape_debug()
                    );
                }
                return false;
            }
        };
        if !ok && !quiet {
            let expected = if key == "log_level" { "off, error or info" } else { "true or false" };
            eprintln!("[extmem-layer] {from}: {key} = '{}' ignored: expected {expected}", value.escape_debug());
        }
        ok
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
            if !ours {
                continue;
            }
            if s.p_setting_name.is_null() {
                eprintln!("[extmem-layer] VkLayerSettingsCreateInfoEXT: a setting with a NULL pSettingName ignored");
                continue;
            }
            // SAFETY: as above.
            let key = unsafe { CStr::from_ptr(s.p_setting_name) }.to_string_lossy().into_owned();
            let value = if s.value_count == 0 || s.p_values.is_null() {
                Err("it has no value (valueCount 0 or pValues NULL)".to_owned())
            } else {
                // SAFETY: `p_values` holds `value_count` values of type `ty`; the first is read.
                unsafe { first_value(s.ty, s.p_values) }
            };
            match value {
                Ok(value) => out.push((key, value)),
                Err(why) => eprintln!("[extmem-layer] VkLayerSettingsCreateInfoEXT: {key} ignored: {why}"),
            }
        }
    }
    out
}

/// The first value of a setting as text (a float as Rust writes it: `NaN` is then refused by
/// [`Settings::set`] like any other bad value), or why it has none.
///
/// # Safety
/// `values` must point to at least one value of type `ty`.
unsafe fn first_value(ty: vk::LayerSettingTypeEXT, values: *const c_void) -> Result<String, String> {
    use vk::LayerSettingTypeEXT as T;
    // SAFETY: the type says what `values` points to.
    unsafe {
        Ok(match ty {
            T::BOOL32 => (*(values as *const vk::Bool32) != 0).to_string(),
            T::INT32 => (*(values as *const i32)).to_string(),
            T::UINT32 => (*(values as *const u32)).to_string(),
            T::INT64 => (*(values as *const i64)).to_string(),
            T::UINT64 => (*(values as *const u64)).to_string(),
            T::FLOAT32 => (*(values as *const f32)).to_string(),
            T::FLOAT64 => (*(values as *const f64)).to_string(),
            T::STRING => {
                let p = *(values as *const *const c_char);
                if p.is_null() {
                    return Err("its string is NULL".to_owned());
                }
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
            other => return Err(format!("unknown VkLayerSettingTypeEXT {}", other.as_raw())),
        })
    }
}

/// The most of a settings file the layer reads; a longer file is refused whole.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Bad lines of one file reported one by one; the rest are counted in one line.
const MAX_FILE_WARNINGS: usize = 4;

/// The settings file and its text, where there is one. A file that cannot be used (not a
/// regular file, over [`MAX_FILE_BYTES`], not UTF-8, unreadable) gets one line on stderr.
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
    match read_settings_file(&path) {
        Ok(text) => Some((path, text)),
        Err(FileProblem::Missing) => None,
        Err(FileProblem::Bad(why)) => {
            eprintln!("[extmem-layer] {}: settings file ignored: {why}", path.display());
            None
        }
    }
}

/// Why a settings file was not read.
#[derive(Debug)]
enum FileProblem {
    /// There is none (no warning: the file is optional).
    Missing,
    /// There is one, and it cannot be used.
    Bad(String),
}

/// Reads a settings file: opened without blocking (a FIFO with no writer would block `open`)
/// and without leaking into children, required to be a regular file, read to at most
/// [`MAX_FILE_BYTES`] (`/dev/zero` never ends).
fn read_settings_file(path: &std::path::Path) -> Result<String, FileProblem> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => FileProblem::Missing,
                _ => FileProblem::Bad(format!("cannot open it: {e}")),
            },
        )?;
    let meta = file.metadata().map_err(|e| FileProblem::Bad(format!("cannot stat it: {e}")))?;
    if !meta.is_file() {
        return Err(FileProblem::Bad(format!("not a regular file ({:?})", meta.file_type())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileProblem::Bad(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileProblem::Bad(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    String::from_utf8(bytes)
        .map_err(|e| FileProblem::Bad(format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to())))
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

/// One environment variable: absent, its value, or `Err(name)` where the value is not UTF-8.
type EnvValue = Option<Result<String, String>>;

/// Reads one environment variable for [`env_settings`].
fn env_var(name: &str) -> EnvValue {
    let v = std::env::var_os(name)?;
    Some(v.into_string().map_err(|_| name.to_owned()))
}

/// The `(key, value)` pairs the environment gives, in order of precedence (later wins); a value
/// that is not UTF-8 comes as `Err(variable name)`.
fn env_settings(var: impl Fn(&str) -> EnvValue) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    match var("EXTMEM_LOG") {
        Some(Ok(v)) if v.is_empty() => {}
        Some(v) => out.push(("log_level".into(), v)),
        None => {}
    }
    match var("EXTMEM_DISABLE_NV") {
        Some(Ok(v)) if v == "1" => out.push(("force_off".into(), Ok("true".into()))),
        Some(Err(name)) => out.push(("force_off".into(), Err(name))),
        _ => {}
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
            "VK_EXTMEM_EXTERNAL_MEMORY_FORCE_OFF" => Some(Ok("false".to_owned())),
            "EXTMEM_LOG" => Some(Ok("1".to_owned())),
            _ => None,
        };
        let s = apply(good(env_settings(env)), file);
        assert_eq!(s, Settings { log_level: LogLevel::Info, force_on: false, force_off: false });
        // EXTMEM_DISABLE_NV=1 turns the layer off; the specific variable still wins over it.
        let off =
            apply(good(env_settings(|n| (n == "EXTMEM_DISABLE_NV").then(|| Ok("1".to_owned())))), Settings::default());
        assert!(!off.active());
    }

    fn good(pairs: Vec<(String, Result<String, String>)>) -> Vec<(String, String)> {
        pairs.into_iter().map(|(k, v)| (k, v.expect("UTF-8"))).collect()
    }

    #[test]
    fn a_non_utf8_environment_value_is_reported_not_dropped() {
        let env = |name: &str| (name == "VK_EXTMEM_EXTERNAL_MEMORY_FORCE_ON").then(|| Err(name.to_owned()));
        let pairs = env_settings(env);
        assert_eq!(pairs, [("force_on".to_owned(), Err("VK_EXTMEM_EXTERNAL_MEMORY_FORCE_ON".to_owned()))]);
    }

    fn bad(path: &str) -> String {
        match read_settings_file(std::path::Path::new(path)) {
            Err(FileProblem::Bad(why)) => why,
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn endless_and_special_files_are_refused_without_reading_them() {
        // /dev/zero grew a process to 23 GB before the file was opened as a regular file only.
        assert!(bad("/dev/zero").contains("not a regular file"));
        assert!(bad("/dev/urandom").contains("not a regular file"));
        assert!(bad("/").contains("not a regular file"));
        assert!(matches!(
            read_settings_file(std::path::Path::new("/nonexistent/vk_layer_settings.txt")),
            Err(FileProblem::Missing)
        ));
    }

    #[test]
    fn a_fifo_without_a_writer_does_not_block() {
        // Before O_NONBLOCK, `open` waited for a writer forever.
        let dir = std::env::temp_dir().join(format!("extmem-layer-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("vk_layer_settings.txt");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let why = bad(fifo.to_str().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(why.contains("not a regular file"), "{why}");
    }

    #[test]
    fn large_and_binary_files_are_refused_whole() {
        let dir = std::env::temp_dir().join(format!("extmem-layer-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.txt");
        let line = "extmem_external_memory.nope = 1\n";
        std::fs::write(&big, line.repeat((MAX_FILE_BYTES as usize / line.len()) + 1)).unwrap();
        assert!(bad(big.to_str().unwrap()).contains("larger than 1048576 bytes"));
        let exact = dir.join("exact.txt");
        std::fs::write(&exact, vec![b'#'; MAX_FILE_BYTES as usize]).unwrap();
        assert!(read_settings_file(&exact).is_ok(), "1 MiB is allowed");
        let binary = dir.join("binary.txt");
        std::fs::write(&binary, b"extmem_external_memory.force_on = \xff\xfe\n").unwrap();
        assert!(bad(binary.to_str().unwrap()).contains("not UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn api_values_without_text_say_why() {
        let nan = f32::NAN;
        // SAFETY: each pointer holds one value of the type given.
        unsafe {
            let text = first_value(vk::LayerSettingTypeEXT::FLOAT32, &nan as *const f32 as *const c_void).unwrap();
            assert_eq!(text, "NaN", "a float becomes text that `set` then refuses");
            let one = 1u32;
            let odd = first_value(vk::LayerSettingTypeEXT::from_raw(77), &one as *const u32 as *const c_void);
            assert_eq!(odd, Err("unknown VkLayerSettingTypeEXT 77".to_owned()));
            let null: *const c_char = std::ptr::null();
            let none = first_value(vk::LayerSettingTypeEXT::STRING, &null as *const *const c_char as *const c_void);
            assert!(none.is_err());
        }
        let mut s = Settings::default();
        assert!(!s.set_quietly("force_on", "NaN", "test", true));
        assert_eq!(s, Settings::default());
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
