//! The producer's handle on its consumer process: starting `extmem peer` (or any command that
//! speaks the protocol), waiting for it to connect, and saying Bye at the end.

use crate::support::timing::{monotonic_ns, T0_VAR};
use extmem::transport::liveness::ProcessWatch;
use extmem::transport::socket::{socket_dir, Listener};
use extmem::transport::{Channel, Message};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

/// How long the producer waits for its consumer (options of `demo` and `bench`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Timeouts {
    /// Seconds to wait for the consumer process to connect (its exit ends the wait at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    pub connect_timeout: f64,
    /// Seconds to wait for each answer of the consumer: a frozen consumer is reported after
    /// this (one that exits, at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub reply_timeout: f64,
}

impl Timeouts {
    fn connect(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    fn reply(&self) -> Duration {
        Duration::from_secs_f64(self.reply_timeout)
    }
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: seconds between 0.1 and 86400")),
    }
}

static TIMEOUTS: OnceLock<Timeouts> = OnceLock::new();

/// Sets the timeouts of the peers this process starts (once, from the command's options).
pub fn set_timeouts(t: Timeouts) {
    let _ = TIMEOUTS.set(t);
}

fn timeouts() -> Timeouts {
    *TIMEOUTS.get_or_init(|| Timeouts { connect_timeout: 60.0, reply_timeout: 30.0 })
}

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
        let timeouts = timeouts();
        let path = socket_dir().join(format!("peer-{}-{}.sock", std::process::id(), monotonic_ns()));
        let listener = Listener::bind(&path)?;
        crate::support::signals::remove_on_signal(&path);
        cmd.arg("--socket").arg(&path).env(T0_VAR, t0.to_string());
        let mut child =
            cmd.spawn().map_err(|e| extmem::Error::Io { context: "starting the peer process".into(), source: e })?;
        // The child's exit ends the waits at once (a consumer that dies before connecting, or
        // whose socket lives on in its own children), instead of at the timeout.
        let watch = ProcessWatch::new(child.id()).ok();
        let connected = listener.accept_watching(timeouts.connect(), watch.as_ref()).map(|mut channel| {
            channel.set_timeout(timeouts.reply());
            if let Some(w) = watch {
                channel.watch(w);
            }
            channel
        });
        match connected {
            Ok(channel) => Ok(Peer { child, channel, _listener: listener }),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(|s| format!(" ({s})")).unwrap_or_default();
                Err(extmem::Error::Peer(format!("the consumer process did not connect: {e}{status}")))
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
