//! Scan-thread cost of retain: the copy of the retained bytes into the writer's triple
//! buffer that ends every cycle, with 10,000 retained bytes.
//!
//! Two layouts: the retained variables declared together (2,500 DINTs side by side: one
//! range) and interleaved with plain memory variables (every other DINT retained: the
//! gaps are bridged, so twice the bytes in one range). Each measures
//! 200,000 captures (a writer thread drains the buffer meanwhile, as in a run) and
//! prints the percentiles as one JSON object.
//!
//! Usage: `cargo run --release -p softplc-benches --bin retain_bench`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use softplc_core::clock::monotonic_ns;
use softplc_core::retain::writer::channel;
use softplc_core::retain::{RetainKind, RetainSet};
use softplc_core::{Area, IecType, Image, LayoutBuilder, VarDecl};

const RETAINED_BYTES: usize = 10_000;
const RUNS: usize = 200_000;

fn measure(interleaved: bool) -> (String, Vec<u64>, usize) {
    let mut b = LayoutBuilder::new();
    let n = RETAINED_BYTES / 4;
    for i in 0..n {
        let mut d = VarDecl::new(&format!("r{i}"), Area::Memory, IecType::Dint, None);
        d.retain = Some(RetainKind::Retain);
        b.declare(d).unwrap();
        if interleaved {
            b.declare(VarDecl::new(
                &format!("m{i}"),
                Area::Memory,
                IecType::Dint,
                None,
            ))
            .unwrap();
        }
    }
    let layout = b.build().unwrap();
    let set = Arc::new(RetainSet::new(&layout));

    let image = Image::new(&layout);
    let (mut capture, mut output) = channel(set.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut sum = 0u64;
        while !s.load(Ordering::Relaxed) {
            output.update();
            sum += u64::from(output.output_buffer()[0]);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        sum
    });
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t0 = monotonic_ns();
        capture.capture(&image);
        samples.push(monotonic_ns() - t0);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    samples.sort_unstable();
    let name = if interleaved {
        "interleaved"
    } else {
        "together"
    };
    (name.to_string(), samples, set.bytes())
}

fn pct(s: &[u64], q: f64) -> f64 {
    s[((s.len() as f64 * q) as usize).min(s.len() - 1)] as f64 / 1e3
}

fn main() {
    let mut parts = Vec::new();
    for interleaved in [false, true] {
        let (name, s, copied) = measure(interleaved);
        parts.push(format!(
            "\"{name}\": {{\"retained_bytes\": {RETAINED_BYTES}, \"copied_bytes\": {copied}, \"p50_us\": {:.3}, \
             \"p99_us\": {:.3}, \"p999_us\": {:.3}, \"max_us\": {:.3}}}",
            pct(&s, 0.5),
            pct(&s, 0.99),
            pct(&s, 0.999),
            pct(&s, 1.0)
        ));
    }
    println!("{{{}}}", parts.join(", "));
}
