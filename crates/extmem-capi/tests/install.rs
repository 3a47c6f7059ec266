//! install-dev.sh lays the library out as a C library, and programs find it the two usual
//! ways: `pkg-config --cflags --libs extmem` (shared, and `--static` with libextmem.a) and
//! CMake's `find_package(extmem)` (target `extmem::extmem`; SKIPPED where cmake is missing).
//! Each builds tests/c/api_test.c against the installed files only and runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::{build, crate_dir, needed, profile, profile_dir, show};

/// The prefix install-dev.sh installed into, once.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        build();
        let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-prefix");
        let _ = std::fs::remove_dir_all(&prefix);
        let target = profile_dir().parent().expect("target").to_path_buf();
        let o = Command::new(crate_dir().join("install-dev.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .args(["--profile", &profile()])
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run install-dev.sh");
        assert!(o.status.success(), "{}", show("install-dev.sh", &o));
        prefix
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let o = Command::new("pkg-config")
        .args(args)
        .arg("extmem")
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
        .output()
        .expect("pkg-config");
    assert!(o.status.success(), "{}", show("pkg-config", &o));
    String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect()
}

fn run_api_test(program: &Path) {
    let o = Command::new(program).output().expect("run api_test");
    let text = show("api_test", &o);
    assert!(o.status.success() && text.contains("PASS"), "{text}");
}

fn compile_with(flags: &[String], out: &str) -> PathBuf {
    let program = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out);
    let o = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(crate_dir().join("tests/c/api_test.c"))
        .args(flags)
        .arg("-lpthread")
        .arg("-o")
        .arg(&program)
        .output()
        .expect("cc");
    assert!(o.status.success(), "{}", show("cc", &o));
    program
}

#[test]
fn the_layout_is_a_c_librarys() {
    let lib = prefix().join("lib");
    assert!(lib.join("libextmem.so.0.1.0").is_file());
    assert_eq!(std::fs::read_link(lib.join("libextmem.so.0")).unwrap(), Path::new("libextmem.so.0.1.0"));
    assert_eq!(std::fs::read_link(lib.join("libextmem.so")).unwrap(), Path::new("libextmem.so.0"));
    for f in ["lib/libextmem.a", "include/extmem.h", "lib/pkgconfig/extmem.pc", "lib/cmake/extmem/extmem-config.cmake"]
    {
        assert!(prefix().join(f).is_file(), "{f}");
    }
    let installed = std::fs::read_to_string(prefix().join("include/extmem.h")).unwrap();
    assert_eq!(installed, std::fs::read_to_string(crate_dir().join("include/extmem.h")).unwrap());
}

#[test]
fn pkg_config_finds_the_shared_library() {
    let mut flags = pkg_config(&["--cflags", "--libs"]);
    assert!(flags.contains(&"-lextmem".to_owned()), "{flags:?}");
    flags.push(format!("-Wl,-rpath,{}", prefix().join("lib").display()));
    let program = compile_with(&flags, "api_test-pkg-config");
    assert!(needed(&program).contains(&"libextmem.so.0".to_owned()), "{:?}", needed(&program));
    run_api_test(&program);
}

#[test]
fn pkg_config_static_links_libextmem_a() {
    // -lextmem would pick the .so beside the .a: name the archive itself.
    let flags: Vec<String> = pkg_config(&["--static", "--cflags", "--libs"])
        .into_iter()
        .map(|f| if f == "-lextmem" { "-l:libextmem.a".into() } else { f })
        .collect();
    let program = compile_with(&flags, "api_test-static");
    assert!(!needed(&program).iter().any(|n| n.starts_with("libextmem")), "{:?}", needed(&program));
    run_api_test(&program);
}

#[test]
fn cmake_find_package_gives_extmem_extmem() {
    if Command::new("cmake").arg("--version").output().is_err() {
        println!("SKIPPED: cmake is not installed (Debian: apt-get install cmake)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-cmake");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let source = crate_dir().join("tests/c/api_test.c");
    std::fs::write(
        dir.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\nproject(extmem_consumer C)\nset(CMAKE_C_STANDARD 11)\n\
             find_package(extmem 0.1 REQUIRED)\nfind_package(Threads REQUIRED)\n\
             add_executable(api_test \"{}\")\ntarget_compile_options(api_test PRIVATE -Wall -Wextra -Werror)\n\
             target_link_libraries(api_test PRIVATE extmem::extmem Threads::Threads)\n",
            source.display()
        ),
    )
    .unwrap();
    let build = dir.join("build");
    let configure = Command::new("cmake")
        .arg("-S")
        .arg(&dir)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .output()
        .unwrap();
    assert!(configure.status.success(), "{}", show("cmake configure", &configure));
    let made = Command::new("cmake").arg("--build").arg(&build).output().unwrap();
    assert!(made.status.success(), "{}", show("cmake --build", &made));
    run_api_test(&build.join("api_test"));
    // Another major version is refused.
    std::fs::write(
        dir.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(x C)\nfind_package(extmem 1.0 REQUIRED)\n",
    )
    .unwrap();
    let refused = Command::new("cmake")
        .arg("-S")
        .arg(&dir)
        .arg("-B")
        .arg(dir.join("build-1"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .output()
        .unwrap();
    assert!(!refused.status.success(), "find_package(extmem 1.0) must fail: {}", show("cmake", &refused));
}
