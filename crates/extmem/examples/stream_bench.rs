//! Runs the stream benchmark (`extmem::stream::bench`) and prints its JSON: the stream's
//! hand-off against the machine's floor, each side in its own process.
//!
//! `cargo run --release -p extmem --example stream_bench [FRAMES]`

fn main() {
    let frames = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let options = extmem::stream::bench::BenchOptions::default().frames(frames);
    match extmem::stream::bench::run(&options) {
        Ok(b) => println!("{}", b.to_json()),
        Err(e) => {
            eprintln!("stream benchmark: {e}");
            std::process::exit(1);
        }
    }
}
