//! The layer's settings from each source: `VkLayerSettingsCreateInfoEXT` (with the Khronos
//! validation layer below the layer, which must stay silent: the 1.3.239 validation layer
//! predates the structure), `vk_layer_settings.txt` through `VK_LAYER_SETTINGS_PATH`, and the
//! environment, which overrides the file.

use ash::vk;
use extmem::validation::ValidationLog;
use extmem_testkit::{init_env, layer_dir, LAYER, VALIDATION};
use std::ffi::CStr;
use std::path::PathBuf;
use std::process::{Command, Output};

const NV_MEM: &CStr = ash::nv::external_memory::NAME;

/// One BOOL32 setting (ash's `values` counts bytes, so the fields are set directly).
fn bool_setting<'a>(layer: &'a CStr, name: &'a CStr, value: &'a vk::Bool32) -> vk::LayerSettingEXT<'a> {
    vk::LayerSettingEXT {
        p_layer_name: layer.as_ptr(),
        p_setting_name: name.as_ptr(),
        ty: vk::LayerSettingTypeEXT::BOOL32,
        value_count: 1,
        p_values: value as *const vk::Bool32 as *const std::ffi::c_void,
        ..Default::default()
    }
}

/// Whether a device of an instance created with `settings` (none: no structure) offers
/// VK_NV_external_memory; with `validate`, validation sits below the layer and any message fails.
fn device_offers_nv(settings: &[vk::LayerSettingEXT], validate: bool) -> bool {
    init_env();
    // SAFETY: loading the system's Vulkan loader.
    let entry = unsafe { ash::Entry::load() }.expect("libvulkan.so.1");
    let layers: &[*const std::ffi::c_char] =
        if validate { &[LAYER.as_ptr(), VALIDATION.as_ptr()] } else { &[LAYER.as_ptr()] };
    let extensions = [ash::ext::debug_utils::NAME.as_ptr()];
    let mut log = ValidationLog::default();
    let mut messenger = log.create_info();
    let mut layer_settings = vk::LayerSettingsCreateInfoEXT::default().settings(settings);
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let mut info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_layer_names(layers)
        .enabled_extension_names(&extensions)
        .push_next(&mut messenger);
    if !settings.is_empty() {
        info = info.push_next(&mut layer_settings);
    }
    // SAFETY: a valid create info.
    let instance = unsafe { entry.create_instance(&info, None) }.expect("vkCreateInstance with layer settings");
    log.install(&entry, &instance).expect("messenger");
    // SAFETY: a live instance.
    let offers = unsafe {
        let pd = instance.enumerate_physical_devices().unwrap()[0];
        let list = instance.enumerate_device_extension_properties(pd).unwrap();
        list.iter().any(|e| e.extension_name_as_c_str() == Ok(NV_MEM))
    };
    let messages = log.messages();
    // SAFETY: nothing made from the instance is alive.
    unsafe {
        log.uninstall();
        instance.destroy_instance(None);
    }
    assert!(messages.is_empty(), "validation below the layer:\n{}", messages.join("\n"));
    offers
}

#[test]
fn api_settings_reach_the_layer_and_validation_below_stays_silent() {
    assert!(device_offers_nv(&[], true), "without settings the layer implements the extension");
    let on = vk::TRUE;
    let force_off = [bool_setting(LAYER, c"force_off", &on)];
    assert!(!device_offers_nv(&force_off, true), "force_off through VkLayerSettingsCreateInfoEXT");
    let off = vk::FALSE;
    assert!(device_offers_nv(&[bool_setting(LAYER, c"force_off", &off)], true));
    // A setting addressed to another layer is not ours, and the structure goes down as it is
    // (validation off: the 1.3.239 validation layer reports the structure as unknown).
    let other = [bool_setting(c"VK_LAYER_KHRONOS_validation", c"force_off", &on)];
    assert!(device_offers_nv(&other, false));
}

/// The C client, built once per test process (two tests building it into one path at once
/// made one of them run a file still being written).
fn client() -> PathBuf {
    static CLIENT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/c/nv_client.c");
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nv_client_settings");
            let status = Command::new("cc")
                .args(["-std=c11", "-O1", "-o"])
                .arg(&out)
                .arg(&source)
                .arg("-lvulkan")
                .status()
                .expect("cc (install gcc)");
            assert!(status.success());
            out
        })
        .clone()
}

fn run_client(client: &PathBuf, settings_file: &PathBuf, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(client);
    cmd.env("VK_ADD_LAYER_PATH", layer_dir())
        .env("VK_INSTANCE_LAYERS", LAYER.to_str().unwrap())
        .env("VK_LAYER_SETTINGS_PATH", settings_file)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("EXTMEM_LOG")
        .env_remove("EXTMEM_DISABLE_NV");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run nv_client")
}

#[test]
fn settings_file_and_environment() {
    let client = client();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("layer-settings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vk_layer_settings.txt");

    std::fs::write(&file, "# extmem\nextmem_external_memory.log_level = info\n").unwrap();
    let out = run_client(&client, &dir, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[extmem-layer] vkCreateInstance"), "log_level = info from the folder's file:\n{stderr}");

    std::fs::write(&file, "extmem_external_memory.force_off = true\n").unwrap();
    let out = run_client(&client, &file, &[]);
    assert!(!out.status.success(), "force_off from the file: the NV extension must be gone");
    // The environment overrides the file.
    let out = run_client(&client, &file, &[("VK_EXTMEM_EXTERNAL_MEMORY_FORCE_OFF", "false")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    std::fs::write(&file, "extmem_external_memory.log_level = loud\n").unwrap();
    let out = run_client(&client, &file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(stderr.contains("log_level = 'loud' ignored: expected off, error or info"), "{stderr}");
}

#[test]
fn a_bad_settings_file_gets_one_line_not_one_per_line() {
    // A 64 MiB file once printed 466,806 lines. A file over 1 MiB is refused whole, with one
    // line; a smaller one with many bad lines of this layer reports a few and counts the rest.
    let client = client();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("layer-settings-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let lines_of = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        stderr.lines().filter(|l| l.starts_with("[extmem-layer]")).map(str::to_owned).collect::<Vec<_>>()
    };
    let big = dir.join("big.txt");
    std::fs::write(&big, "extmem_external_memory.nope = 1\n".repeat(100_000)).unwrap();
    let out = run_client(&client, &big, &[]);
    assert!(out.status.success(), "a refused file leaves the defaults");
    let lines = lines_of(&out);
    // Once per settings resolution: each instance, and the process's first log-level check.
    assert!(!lines.is_empty() && lines.iter().all(|l| l.contains("settings file ignored: larger than")), "{lines:?}");
    assert!(lines.len() <= 4, "{} lines for one bad file:\n{}", lines.len(), lines.join("\n"));

    let many = dir.join("many.txt");
    std::fs::write(&many, "extmem_external_memory.nope = 1\n".repeat(1000)).unwrap();
    let out = run_client(&client, &many, &[]);
    let lines = lines_of(&out);
    assert!(lines.iter().any(|l| l.contains("996 more bad line(s)")), "{lines:?}");
    assert!(lines.len() <= 20, "{} lines:\n{}", lines.len(), lines.join("\n"));

    for special in ["/dev/zero", "/dev/urandom"] {
        let out = run_client(&client, &PathBuf::from(special), &[]);
        assert!(out.status.success());
        let lines = lines_of(&out);
        assert!(lines.iter().all(|l| l.contains("not a regular file")) && !lines.is_empty(), "{special}: {lines:?}");
    }
}
