//! The `extmem` command against careless arguments and hostile or dead consumers: a consumer
//! that dies before connecting fails the demo at once, timeouts are options, a killed producer
//! removes its socket, a consumer's failure text reaches the terminal escaped, a closed stdout
//! ends the process quietly, and out-of-range values are refused by name.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far above any start-up time here, far below the default timeouts (60 s to connect): what is
/// tested is that the wait ends, not how fast.
const BOUND: Duration = Duration::from_secs(40);

/// A private runtime folder for one test (its sockets land in `<it>/extmem`).
fn runtime_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("extmem-careless-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn extmem(runtime: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_extmem"));
    cmd.env("XDG_RUNTIME_DIR", runtime).env_remove("EXTMEM_DEVICE");
    cmd
}

fn run(mut cmd: Command) -> (Output, Duration) {
    let t = Instant::now();
    let out = cmd.output().expect("run extmem");
    eprintln!("--- {cmd:?}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, t.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A Python "consumer" for `demo --torch` with this body (it gets `--socket PATH`).
fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("consumer.py");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn a_consumer_that_dies_before_connecting_fails_the_demo_at_once() {
    let dir = runtime_dir("dies");
    let mut cmd = extmem(&dir);
    cmd.args(["demo", "--width", "16", "--height", "16", "--torch", "/nonexistent/missing.py"]);
    let (out, took) = run(cmd);
    assert!(!out.status.success());
    assert!(took < BOUND, "noticed after {took:?}");
    let e = stderr(&out);
    assert!(e.contains("did not connect") && e.contains("exited"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_timeouts_are_options_and_a_silent_consumer_is_reported_after_them() {
    let dir = runtime_dir("silent");
    let sleeper = script(&dir, "import time\ntime.sleep(120)\n");
    let mut cmd = extmem(&dir);
    cmd.args(["demo", "--width", "16", "--height", "16", "--connect-timeout", "1", "--torch"]).arg(&sleeper);
    let (out, took) = run(cmd);
    assert!(!out.status.success());
    assert!(took < BOUND, "took {took:?}");
    assert!(stderr(&out).contains("no peer connected within 1.0 s"), "{}", stderr(&out));
    for bad in ["0", "-1", "nan", "x"] {
        let mut cmd = extmem(&dir);
        cmd.args(["demo", "--reply-timeout", bad]);
        let (out, _) = run(cmd);
        assert_eq!(out.status.code(), Some(2), "--reply-timeout {bad} accepted");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_producer_killed_with_sigterm_or_sigint_removes_its_socket() {
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let dir = runtime_dir(&format!("killed-{}", signal.as_raw()));
        let sleeper = script(&dir, "import time\ntime.sleep(60)\n");
        let mut cmd = extmem(&dir);
        cmd.args(["demo", "--width", "16", "--height", "16", "--connect-timeout", "600", "--torch"]).arg(&sleeper);
        let mut producer = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let sockets = dir.join("extmem");
        let start = Instant::now();
        let socket = loop {
            let found = std::fs::read_dir(&sockets)
                .ok()
                .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "sock")));
            if let Some(s) = found {
                break s;
            }
            assert!(start.elapsed() < BOUND, "no socket appeared in {}", sockets.display());
            std::thread::sleep(Duration::from_millis(50));
        };
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", producer.id())).unwrap_or_default();
        let pid = rustix::process::Pid::from_raw(producer.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let status = producer.wait().unwrap();
        for child in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
            if let Some(c) = rustix::process::Pid::from_raw(child) {
                let _ = rustix::process::kill_process(c, rustix::process::Signal::KILL);
            }
        }
        assert_eq!(status.signal(), Some(signal.as_raw()), "{status}");
        assert!(!socket.exists(), "{} survived {signal:?}", socket.display());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_consumers_failure_text_reaches_the_terminal_escaped() {
    let dir = runtime_dir("forged");
    // Answers the share with a failed verdict whose text clears the screen and forges a PASS line.
    let forger = script(
        &dir,
        &r#"import socket, struct, sys
path = sys.argv[sys.argv.index("--socket") + 1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
s.recvmsg(4096, socket.CMSG_SPACE(16))
detail = b"\x1b[2J\nPASS: 1 frame(s), forged"
body = struct.pack("<BH", 0, len(detail)) + detail
s.send(b"EXTM" + struct.pack("<HHI", WIRE_VERSION, 4, len(body)) + body)
s.recv(4096)
"#
        .replace("WIRE_VERSION", &extmem::transport::message::VERSION.to_string()),
    );
    let mut cmd = extmem(&dir);
    cmd.args(["demo", "--width", "16", "--height", "16", "--torch"]).arg(&forger);
    let (out, _) = run(cmd);
    assert!(!out.status.success());
    let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    assert!(!all.contains(&0x1b), "an escape character reached the terminal");
    let text = String::from_utf8_lossy(&all);
    assert!(!text.lines().any(|l| l.starts_with("PASS")), "a forged PASS line: {text}");
    assert!(text.contains(r"\u{1b}[2J\nPASS"), "the text, escaped: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_stdout_ends_caps_quietly() {
    let dir = runtime_dir("epipe");
    let mut cmd = extmem(&dir);
    let child = cmd.arg("caps").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Close the reading end before caps writes (it first starts Vulkan), as `| head -0` would.
    let mut child = child;
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let e = stderr(&out);
    assert!(!e.contains("panicked"), "{e}");
    assert!(out.status.success() || out.status.signal() == Some(libc_sigpipe()), "{}: {e}", out.status);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn libc_sigpipe() -> i32 {
    rustix::process::Signal::PIPE.as_raw()
}

#[test]
fn out_of_range_values_and_a_bad_device_index_are_refused_by_name() {
    let dir = runtime_dir("ranges");
    for (args, says) in [
        (&["demo", "--frames", "0"][..], "--frames"),
        (&["demo", "--width", "0"][..], "--width"),
        (&["bench", "--repeat", "0"][..], "--repeat"),
        (&["bench", "--frames", "0"][..], "--frames"),
        (&["bench", "--sizes", "0"][..], "size \"0\""),
        (&["bench", "--sizes", "99999999999G"][..], "99999999999G"),
        (&["bench", "--soak", "0"][..], "--soak"),
        (&["demo", "--cuda", "--torch", "x.py"][..], "cannot be used with"),
    ] {
        let mut cmd = extmem(&dir);
        cmd.args(args);
        let (out, _) = run(cmd);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let mut cmd = extmem(&dir);
    cmd.args(["demo", "--width", "16", "--height", "16"]).env("EXTMEM_DEVICE", "abc");
    let (out, _) = run(cmd);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("EXTMEM_DEVICE=\"abc\" is not a device index"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}
