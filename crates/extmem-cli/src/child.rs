//! The producer's handle on its consumer process: starting `extmem peer` (or any command that
//! speaks the protocol), waiting for it to connect, and saying Bye at the end.

use crate::timing::{monotonic_ns, T0_VAR};
use extmem::transport::socket::{socket_dir, Listener};
use extmem::transport::{Channel, Message};
use std::process::{Child, Command};
use std::time::Duration;

/// A started peer process and the connection to it.
pub struct Peer {
    pub child: Child,
    pub channel: Channel,
    _listener: Listener,
}

impl Peer {
    /// Starts `extmem peer` and waits for it to connect.
    pub fn spawn(validate: bool, t0: u64, extra: &[&str]) -> extmem::Result<Peer> {
        let exe =
            std::env::current_exe().map_err(|e| extmem::Error::Io { context: "current_exe".into(), source: e })?;
        let mut cmd = Command::new(exe);
        cmd.arg("peer").args(extra);
        if validate {
            cmd.arg("--validate");
        }
        Self::spawn_command(cmd, t0)
    }

    /// Starts `cmd --socket <path>` (any consumer that speaks the protocol, a Python one say)
    /// and waits for it to connect.
    pub fn spawn_command(mut cmd: Command, t0: u64) -> extmem::Result<Peer> {
        let path = socket_dir().join(format!("peer-{}-{}.sock", std::process::id(), monotonic_ns()));
        let listener = Listener::bind(&path)?;
        cmd.arg("--socket").arg(&path).env(T0_VAR, t0.to_string());
        let mut child =
            cmd.spawn().map_err(|e| extmem::Error::Io { context: "starting the peer process".into(), source: e })?;
        match listener.accept(Duration::from_secs(60)) {
            Ok(channel) => Ok(Peer { child, channel, _listener: listener }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Says Bye and waits for the process; `Ok(true)` when it exited successfully.
    pub fn finish(mut self) -> extmem::Result<bool> {
        let _ = self.channel.send(&Message::Bye, &[]);
        let status =
            self.child.wait().map_err(|e| extmem::Error::Io { context: "waiting for the peer".into(), source: e })?;
        Ok(status.success())
    }
}
