//! The old `extmem bench` command line, a hidden alias for one release: its flags (`--pool`,
//! `--cuda`, `--cuda --peer`, `--soak DURATION` and the rest) are still parsed at `bench`'s
//! level, with their old checks, and translated into the mode they chose with the flags
//! given explicitly (defaults are each mode's own). Flags the chosen mode never read are
//! dropped, as the old command ignored them.

use crate::support::child::Timeouts;
use crate::support::error::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};
use extmem::QueueKind;
use std::path::PathBuf;
use std::time::Duration;

// The old flags of `extmem bench`, all hidden (no doc comment: it would be `bench`'s about).
#[derive(clap::Args)]
pub struct Legacy {
    #[arg(long, hide = true, value_delimiter = ',', value_parser = crate::support::parse::size)]
    pub sizes: Option<Vec<u64>>,
    #[arg(long, hide = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub repeat: u64,
    #[arg(long, hide = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: u64,
    #[arg(long, hide = true)]
    pub nv: bool,
    #[arg(long, hide = true)]
    pub json: bool,
    #[arg(long, hide = true)]
    cuda: bool,
    #[arg(long, hide = true, requires = "cuda")]
    peer: bool,
    #[arg(long, hide = true, value_delimiter = ',', default_value = "general,transfer")]
    pub queue: Vec<QueueKind>,
    #[arg(long, hide = true)]
    pool: bool,
    #[arg(long, hide = true, value_name = "SCRIPT", requires = "pool")]
    torch: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "FILE", value_parser = crate::support::parse::output_file)]
    pub png: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "DURATION", value_parser = crate::bench::soak::parse_duration)]
    soak: Option<Duration>,
    #[arg(long, hide = true)]
    soak_rate: Option<String>,
    #[arg(long, hide = true)]
    soak_frames: Option<String>,
    #[arg(long, hide = true)]
    soak_sample: Option<String>,
    #[arg(long, hide = true)]
    soak_bytes: Option<String>,
    #[arg(long, hide = true)]
    soak_out: Option<String>,
    #[command(flatten)]
    pub timeouts: Timeouts,
}

/// What the old flags ask for.
pub enum Translated {
    /// A mode, with its command line (its name first).
    Mode { name: &'static str, argv: Vec<String> },
    /// First hand-off and steady state in one run (the old plain `extmem bench`).
    Overview(Box<Legacy>),
}

/// How an old flag reaches a mode: its id, and the new flag (`""`: the first positional).
type Rename = (&'static str, &'static str);

const TIMEOUTS: [Rename; 2] = [("connect_timeout", "--connect-timeout"), ("reply_timeout", "--reply-timeout")];
const SOAK: [Rename; 7] = [
    ("soak", ""),
    ("soak_rate", "--rate"),
    ("soak_frames", "--frames"),
    ("soak_sample", "--sample"),
    ("soak_bytes", "--bytes"),
    ("soak_out", "--out"),
    ("nv", "--nv"),
];
const PEER: [Rename; 2] = [("sizes", "--sizes"), ("json", "--json")];
const POOL: [Rename; 6] =
    [("sizes", "--sizes"), ("repeat", "--repeat"), ("nv", "--nv"), ("json", "--json"), ("png", "--png"), ("torch", "--torch")];
const CUDA: [Rename; 5] =
    [("sizes", "--sizes"), ("repeat", "--repeat"), ("queue", "--queue"), ("json", "--json"), ("png", "--png")];

/// Switches (no value) among the old flags.
const SWITCHES: [&str; 2] = ["nv", "json"];

fn given(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::CommandLine)
}

/// The old flags `renames` names, as the mode's flags.
fn forward(m: &ArgMatches, renames: &[Rename], argv: &mut Vec<String>) {
    for (id, flag) in renames {
        if !given(m, id) {
            continue;
        }
        if !flag.is_empty() {
            argv.push(flag.to_string());
        }
        if !SWITCHES.contains(id) {
            let raw: Vec<String> =
                m.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
            argv.push(raw.join(","));
        }
    }
}

/// Translates the old flags of `m` (bench's matches, no mode given).
pub fn translate(m: &ArgMatches) -> Result<Translated> {
    let legacy = Legacy::from_arg_matches(m)?;
    let (name, renames): (&'static str, &[Rename]) = if legacy.soak.is_some() {
        ("soak", &SOAK)
    } else if legacy.peer {
        ("peer", &PEER)
    } else if legacy.pool {
        ("pool", &POOL)
    } else if legacy.cuda {
        ("cuda", &CUDA)
    } else {
        return Ok(Translated::Overview(Box::new(legacy)));
    };
    let mut argv = vec![name.to_string()];
    forward(m, renames, &mut argv);
    if name != "peer" {
        forward(m, &TIMEOUTS, &mut argv);
    }
    // The old --frames: with --cuda --peer the frames per path (at least 10), with --cuda ten
    // times as many (at least 100) per steady-state figure.
    if given(m, "frames") && name == "peer" {
        argv.extend(["--frames".into(), legacy.frames.max(10).to_string()]);
    }
    if given(m, "frames") && name == "cuda" {
        argv.extend(["--frames".into(), (legacy.frames.max(10) * 10).to_string()]);
    }
    Ok(Translated::Mode { name, argv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(args: &[&str]) -> Option<(&'static str, Vec<String>)> {
        let m = crate::bench::cli().try_get_matches_from(std::iter::once("bench").chain(args.iter().copied())).unwrap();
        match translate(&m).unwrap() {
            Translated::Mode { name, argv } => Some((name, argv)),
            Translated::Overview(_) => None,
        }
    }

    #[test]
    fn the_old_flags_choose_the_mode_they_meant() {
        assert_eq!(translated(&["--json"]), None);
        assert_eq!(translated(&["--pool", "--json", "--png", "/tmp/p.png"]).unwrap(), ("pool", vec![
            "pool".into(),
            "--json".into(),
            "--png".into(),
            "/tmp/p.png".into()
        ]));
        let (name, argv) = translated(&["--pool", "--sizes", "4K,1G", "--repeat", "5"]).unwrap();
        assert_eq!((name, argv.join(" ")), ("pool", "pool --sizes 4K,1G --repeat 5".into()));
        let (name, argv) = translated(&["--cuda", "--frames", "3", "--queue", "transfer"]).unwrap();
        assert_eq!((name, argv.join(" ")), ("cuda", "cuda --queue transfer --frames 100".into()));
        let (name, argv) = translated(&["--cuda", "--peer", "--json"]).unwrap();
        assert_eq!((name, argv.join(" ")), ("peer", "peer --json".into()));
        let (name, argv) = translated(&["--soak", "90s", "--soak-rate", "4", "--soak-out", "/tmp/s.json"]).unwrap();
        assert_eq!((name, argv.join(" ")), ("soak", "soak 90s --rate 4 --out /tmp/s.json".into()));
    }

    #[test]
    fn each_translation_parses_in_its_mode() {
        for args in [
            &["--pool", "--json", "--sizes", "4K", "--reply-timeout", "5"][..],
            &["--cuda", "--json", "--frames", "30", "--queue", "general,transfer"],
            &["--cuda", "--peer", "--frames", "2"],
            &["--soak", "1h", "--soak-bytes", "64K", "--nv"],
        ] {
            let (name, argv) = translated(args).unwrap();
            let mode = super::super::mode(name);
            (mode.cli)().name(mode.name).try_get_matches_from(&argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
