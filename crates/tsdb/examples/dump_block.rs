//! Writes the samples of one block to a file, cut into chunks as the block
//! writer cuts them (one 2-hour window, at most 4096 samples), for codec
//! experiments (`cargo run --release -p codec --example block_dump -- OUT`).
//!
//! `cargo run --release -p tsdb --example dump_block -- <data>/tenants/default/blocks/<ulid> OUT`
//!
//! Output, per chunk: metric name length u32 LE, the name, sample count
//! u32 LE, then (timestamp i64 LE, value bits u64 LE) per sample.

use std::io::Write;
use std::sync::Arc;
use tsdb::store::{BlockStore, LocalStore};

/// The block writer's chunk limits (`crates/tsdb/src/block/writer.rs`).
const CHUNK_WINDOW_MS: i64 = 2 * 3600 * 1000;
const MAX_CHUNK_SAMPLES: usize = 4096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [block, out] = args.as_slice() else {
        return Err("usage: dump_block BLOCK_DIR OUT_FILE".into());
    };
    let block = std::path::Path::new(block);
    let (Some(parent), Some(name)) = (block.parent(), block.file_name().and_then(|n| n.to_str())) else {
        return Err(format!("{}: not a block directory", block.display()).into());
    };
    let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(parent)?);
    let reader = tsdb::BlockReader::open(store, name)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut result = Ok(());
    reader.for_each_series(|labels, samples| {
        if result.is_err() {
            return;
        }
        let name = labels.get("__name__").unwrap_or("");
        result = samples
            .chunk_by(|a, b| a.t.div_euclid(CHUNK_WINDOW_MS) == b.t.div_euclid(CHUNK_WINDOW_MS))
            .flat_map(|window| window.chunks(MAX_CHUNK_SAMPLES))
            .try_for_each(|chunk| -> std::io::Result<()> {
                w.write_all(&(name.len() as u32).to_le_bytes())?;
                w.write_all(name.as_bytes())?;
                w.write_all(&(chunk.len() as u32).to_le_bytes())?;
                for s in chunk {
                    w.write_all(&s.t.to_le_bytes())?;
                    w.write_all(&s.v.to_bits().to_le_bytes())?;
                }
                Ok(())
            });
    })?;
    result?;
    w.flush()?;
    eprintln!("dumped {} series to {out}", reader.num_series());
    Ok(())
}
