#[derive(clap::Args)]
pub struct Args {} pub fn main(_: Args) -> extmem::Result<std::process::ExitCode> { todo!() }
