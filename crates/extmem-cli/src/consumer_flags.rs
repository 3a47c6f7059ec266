//! The consumer flags of `extmem demo` exclude each other where one would be ignored: checked
//! over every pair, so that a new flag has to say how it combines.

use crate::Cli;
use clap::error::ErrorKind;
use clap::CommandFactory;

/// `demo` with `flags`: `Ok` when accepted, the error kind when refused.
fn parse(flags: &[&str]) -> Result<(), ErrorKind> {
    let mut argv = vec!["extmem", "demo"];
    argv.extend_from_slice(flags);
    Cli::command().try_get_matches_from(argv).map(|_| ()).map_err(|e| e.kind())
}

#[test]
fn the_cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn consumer_flags_that_would_ignore_each_other_conflict() {
    let consumers: [&[&str]; 5] =
        [&["--cuda"], &["--torch", "consumer.py"], &["--host-memory"], &["--gl"], &["--torch-producer", "producer.py"]];
    for (i, a) in consumers.iter().enumerate() {
        assert_eq!(parse(a), Ok(()), "{a:?} alone");
        for b in &consumers[i + 1..] {
            let both = [*a, *b].concat();
            // CUDA registers host memory (cuMemHostRegister); every other pair has one consumer
            // too many.
            let allowed = both.contains(&"--cuda") && both.contains(&"--host-memory");
            let want = if allowed { Ok(()) } else { Err(ErrorKind::ArgumentConflict) };
            assert_eq!(parse(&both), want, "{both:?}");
        }
    }
}
