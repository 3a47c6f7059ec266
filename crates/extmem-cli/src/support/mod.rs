//! What every subcommand may use: the peer process, time, signals, fault injection, plots,
//! option parsers, JSON output and the CLI's error type. Subcommand folders use this and the
//! libraries, never each other.

pub mod child;
pub mod error;
pub mod fault;
pub mod json;
pub mod parse;
pub mod plot;
pub mod python;
pub mod signals;
pub mod timing;
