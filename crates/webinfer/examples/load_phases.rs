//! Where a load's CPU time goes, phase by phase, for one model directory (no I/O timed):
//!
//!     cargo run --release -p webinfer --example load_phases -- tests/real/models/mobilenet_v2/model.json
//!
//! `parse`: model.json and the topology (`ModelBuilder::new`); `decode`: every shard's bytes
//! through the streaming decoder; `lower`: the graph built and its passes run
//! (`ModelBuilder::build_now`); `backend`: the CPU backend made ready (`finish`). Medians of
//! 15 runs.
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: load_phases <model.json>")?;
    let json = std::fs::read(&path)?;
    let dir = std::path::Path::new(&path)
        .parent()
        .ok_or("model.json has no directory")?;
    let options = webinfer::LoadOptions {
        backend: webinfer::BackendChoice::Cpu,
        ..Default::default()
    };
    let paths: Vec<String> = webinfer::ModelBuilder::new(&json, &options)?
        .decoder()
        .file_paths()
        .map(str::to_string)
        .collect();
    let shards: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(dir.join(p)))
        .collect::<Result<_, _>>()?;
    let (mut parse, mut decode, mut lower, mut backend) = (vec![], vec![], vec![], vec![]);
    for _ in 0..15 {
        let t = Instant::now();
        let mut b = webinfer::ModelBuilder::new(&json, &options)?;
        parse.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for (i, s) in shards.iter().enumerate() {
            b.decoder().set_file_length(i, s.len() as u64)?;
            for (k, chunk) in s.chunks(64 << 10).enumerate() {
                b.decoder().write(i, (k * (64 << 10)) as u64, chunk)?;
            }
        }
        decode.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        b.build_now();
        lower.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let model = futures::executor::block_on(b.finish())?;
        backend.push(t.elapsed().as_secs_f64() * 1e3);
        drop(model);
    }
    println!(
        "{path}\nparse {:.2} ms  decode {:.2} ms  lower {:.2} ms  backend {:.2} ms  (medians of 15)",
        median(parse),
        median(decode),
        median(lower),
        median(backend)
    );
    Ok(())
}
