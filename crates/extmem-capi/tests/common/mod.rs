//! What the integration tests share: where things are, and a fresh build of the library.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// This crate's folder.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/debug (or the profile's folder): the tests run from its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The profile's name (the folder's).
pub fn profile() -> String {
    profile_dir().file_name().expect("a profile folder").to_string_lossy().into_owned()
}

/// Builds the library, `extmem` (the CLI, for `extmem peer`) and `extmem-hostile-peer` in this
/// target folder, once
/// per test process: `cargo test` does not rebuild a cdylib for the tests of its own crate.
pub fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = crate_dir().join("../..");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(&root).args(["build", "-q", "-p", "extmem-capi", "-p", "extmem-cli", "-p", "extmem-testkit"]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        let s = cmd.status().expect("cargo build");
        assert!(s.success(), "building extmem-capi, extmem-cli and extmem-testkit");
    });
}

/// A folder with the library under its link name and its SONAME, as an installation has it.
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        build();
        let built = profile_dir().join("libextmem.so");
        assert!(built.exists(), "{} was not built", built.display());
        let soname = String::from_utf8_lossy(&Command::new("readelf").arg("-d").arg(&built).output().unwrap().stdout)
            .lines()
            .find(|l| l.contains("SONAME"))
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(soname.contains("[libextmem.so.0]"), "SONAME: {soname:?}");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-lib");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["libextmem.so", "libextmem.so.0"] {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&built, &link).unwrap();
        }
        dir
    })
}

/// A command's status and output, for assertion messages.
pub fn show(what: &str, o: &Output) -> String {
    format!("--- {what}: {}\n{}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The `NEEDED` entries of an ELF file.
pub fn needed(path: &Path) -> Vec<String> {
    let o = Command::new("readelf").arg("-d").arg(path).output().expect("readelf");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|s| s.trim_end_matches(']').to_owned()))
        .collect()
}

/// A running program that listens: its process, its socket (from its "LISTENING <path>"
/// line), and the reader of the rest of its output.
pub struct Listening {
    child: Child,
    /// The socket it listens on.
    pub socket: String,
    head: Vec<String>,
    rest: std::thread::JoinHandle<Vec<String>>,
}

impl Listening {
    /// Starts `cmd` and reads its output up to its "LISTENING <path>" line.
    // The child is waited for on every path: here when it ends early, else in `finish`.
    #[allow(clippy::zombie_processes)]
    pub fn start(mut cmd: Command) -> Listening {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the program");
        let mut head = Vec::new();
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let o = child.wait_with_output().expect("wait for the program");
                panic!("the program ended before listening: {head:?}\n{}", show("program", &o));
            }
            if let Some(path) = line.strip_prefix("LISTENING ") {
                let socket = path.trim().to_owned();
                let rest = std::thread::spawn(move || reader.lines().map_while(Result::ok).collect::<Vec<_>>());
                return Listening { child, socket, head, rest };
            }
            head.push(line.trim_end().to_owned());
        }
    }

    /// Waits for it: its exit code, and all it printed.
    pub fn finish(self) -> (Option<i32>, String) {
        let o = self.child.wait_with_output().expect("wait for the program");
        let mut lines = self.head;
        lines.extend(self.rest.join().unwrap_or_default());
        (o.status.code(), format!("{}\n{}", lines.join("\n"), String::from_utf8_lossy(&o.stderr)))
    }
}
