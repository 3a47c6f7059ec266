//! The stream benchmark's smoke run (a short run; its figures are not judged here: they go in
//! benchmark results, not tests): every series completes between real processes and every
//! figure is a plain, finite number.

#[test]
fn the_stream_benchmark_runs_every_series() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: the only test of this binary; nothing else reads the environment now.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let options = extmem::stream::bench::BenchOptions::default().frames(300);
    let b = extmem::stream::bench::run(&options).unwrap();
    let json = b.to_json();
    for key in [
        "stream_handoff_us",
        "stream_handoff_sleeping_us",
        "stream_round_trip_us",
        "stream_handoffs_per_s",
        "stream_handoffs_per_s_4",
        "syscalls_per_handoff",
        "pool_handoff_us",
        "futex_round_trip_us",
        "poll_round_trip_us",
        "socket_round_trip_us",
    ] {
        assert!(json.contains(&format!("\"{key}\": ")), "{key} missing:\n{json}");
    }
    for (what, v) in [
        ("one-way hand-off", b.stream_handoff_us),
        ("sleeping hand-off", b.stream_handoff_sleeping_us),
        ("round trip", b.stream_round_trip_us),
        ("hand-offs per second", b.stream_handoffs_per_s),
        ("hand-offs per second, 4 subscribers", b.stream_handoffs_per_s_4),
        ("pool hand-off", b.pool_handoff_us),
        ("futex round trip", b.futex_round_trip_us),
        ("poll round trip", b.poll_round_trip_us),
        ("socket round trip", b.socket_round_trip_us),
    ] {
        assert!(v.is_finite() && v > 0.0, "{what}: {v}");
    }
    println!("{json}");
}
