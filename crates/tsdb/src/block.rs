//! Immutable blocks: all samples of a time range for a set of series, with a
//! symbol table, an inverted index and compressed chunks.
//!
//! A block is a directory `blocks/<id>/` in a [`crate::store::BlockStore`]:
//! `meta.json`, `index`, `chunks`. Byte layouts are in `docs/format/block.md`.
//! Blocks are written once by [`writer::BlockWriter`] and never modified; a
//! deletion or a compaction writes a new block and removes the old ones.

pub(crate) mod frame_cache;
pub(crate) mod index_file;
pub(crate) mod reader;
pub(crate) mod writer;

use serde::{Deserialize, Serialize};

/// The version written into `meta.json` and the index header.
///
/// Version 2 stores the `index` file as one zstd frame; version 1 stored it
/// raw. Version 3 has the same files, but its chunks may use versions 2 and 3 of the
/// decimal codec (scaled mantissas, blocked packing, float bits), which older
/// binaries cannot decode: the version tells them to leave the block alone.
/// The codec decodes both chunk versions.
///
/// Version 4 gives each 2-hour chunk window its own frames, so a chunk's
/// frame number may go down from one chunk of a series to the next (a
/// signed delta in the series entry). All four are read.
pub(crate) const FORMAT_VERSION: u32 = 4;

/// The oldest block format this code reads.
pub(crate) const OLDEST_READABLE_VERSION: u32 = 1;

/// `meta.json` of a block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockMeta {
    /// The block's id, a ULID (sorts by creation time).
    pub ulid: String,
    /// Smallest sample timestamp in the block (inclusive).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Largest sample timestamp in the block (inclusive).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Compaction lineage.
    pub compaction: BlockCompaction,
    /// Format version.
    pub version: u32,
}

/// Counts of a block.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockStats {
    /// Series in the block.
    #[serde(rename = "numSeries")]
    pub num_series: u64,
    /// Samples in the block.
    #[serde(rename = "numSamples")]
    pub num_samples: u64,
    /// Chunks in the block.
    #[serde(rename = "numChunks")]
    pub num_chunks: u64,
    /// Bytes of the `chunks` and `index` files.
    #[serde(rename = "numBytes", default)]
    pub num_bytes: u64,
}

/// Where a block comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockCompaction {
    /// 1 for a block cut from the head, +1 per compaction.
    pub level: u32,
    /// Ids of the level-1 blocks merged into this one.
    pub sources: Vec<String>,
}

/// A new ULID: 48 bits of milliseconds and 80 random bits, Crockford base32.
pub(crate) fn new_ulid() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let random: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
    let v = (ms << 80) | random;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests;
