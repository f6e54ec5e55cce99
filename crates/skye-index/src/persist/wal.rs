//! Write-ahead log: one record per acknowledged write, fsync'd before the write is applied.
//!
//! Record: `len: u32 | crc32(body): u32 | body`, body = `seq: u64 | op`. On open, records are
//! replayed up to the first incomplete or corrupt one; that tail (a write that was never
//! acknowledged) is cut off. A bad record followed by more data is damage, not a torn write, and
//! is refused rather than cut.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::codec::{CodecError, Decoder, Encoder, MAX_LEN};
use crate::collection::Point;
use crate::payload::Value;

/// One logged write.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Upsert(Vec<Point>),
    Delete(Vec<String>),
    SetPayload {
        id: String,
        fields: Vec<(String, Option<Value>)>,
    },
    SetIndexingThreshold(usize),
}

fn encode_op(seq: u64, op: &Op) -> Result<Vec<u8>, CodecError> {
    let mut e = Encoder::new(Vec::new());
    e.u64(seq)?;
    match op {
        Op::Upsert(points) => {
            e.u8(1)?;
            e.len(points.len())?;
            for p in points {
                e.str(&p.id)?;
                e.len(p.vector.len())?;
                e.f32s(&p.vector)?;
                e.len(p.payload.len())?;
                for (name, v) in &p.payload {
                    e.str(name)?;
                    e.value(v)?;
                }
            }
        }
        Op::Delete(ids) => {
            e.u8(2)?;
            e.len(ids.len())?;
            ids.iter().try_for_each(|id| e.str(id))?;
        }
        Op::SetPayload { id, fields } => {
            e.u8(3)?;
            e.str(id)?;
            e.len(fields.len())?;
            for (name, v) in fields {
                e.str(name)?;
                match v {
                    Some(v) => {
                        e.u8(1)?;
                        e.value(v)?;
                    }
                    None => e.u8(0)?,
                }
            }
        }
        Op::SetIndexingThreshold(t) => {
            e.u8(4)?;
            e.len(*t)?;
        }
    }
    // The record carries its own CRC in the header; drop the encoder's trailer.
    let mut body = e.finish()?;
    body.truncate(body.len() - 4);
    Ok(body)
}

fn decode_op(body: &[u8]) -> Result<(u64, Op), CodecError> {
    let mut d = Decoder::new(body);
    let seq = d.u64()?;
    let op = match d.u8()? {
        1 => {
            let n = d.len(MAX_LEN)?;
            let mut points = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let id = d.str()?;
                let dim = d.len(65_536)?;
                let mut vector = Vec::with_capacity(dim);
                d.f32s(dim, &mut vector)?;
                let fields = d.len(usize::from(u16::MAX))?;
                let mut payload = Vec::with_capacity(fields);
                for _ in 0..fields {
                    payload.push((d.str()?, d.value(0)?));
                }
                points.push(Point {
                    id,
                    vector,
                    payload,
                });
            }
            Op::Upsert(points)
        }
        2 => {
            let n = d.len(MAX_LEN)?;
            let mut ids = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                ids.push(d.str()?);
            }
            Op::Delete(ids)
        }
        3 => {
            let id = d.str()?;
            let n = d.len(usize::from(u16::MAX))?;
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                let name = d.str()?;
                let v = if d.u8()? != 0 {
                    Some(d.value(0)?)
                } else {
                    None
                };
                fields.push((name, v));
            }
            Op::SetPayload { id, fields }
        }
        4 => Op::SetIndexingThreshold(d.len(usize::MAX)?),
        t => return Err(CodecError::Corrupt(format!("unknown WAL op {t}"))),
    };
    Ok((seq, op))
}

/// The open log.
#[derive(Debug)]
pub struct Wal {
    file: File,
    path: PathBuf,
    size: u64,
    pub last_seq: u64,
}

/// What opening a log found.
#[derive(Debug)]
pub struct Replay {
    pub ops: Vec<(u64, Op)>,
    /// Bytes of an incomplete or corrupt tail that were cut off.
    pub truncated_bytes: u64,
}

impl Wal {
    /// Opens (creating if needed) the log at `path` and reads every complete record.
    pub fn open(path: &Path) -> Result<(Wal, Replay), CodecError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let total = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        let mut reader = BufReader::new(&file);
        let mut ops = Vec::new();
        let mut good: u64 = 0;
        // Where the first bad record claims to end, when its header could be read.
        let mut claimed_end = None;
        loop {
            let mut header = [0u8; 8];
            if read_full(&mut reader, &mut header)? < 8 {
                break;
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            claimed_end = Some(if len > MAX_LEN as u64 * 4 {
                u64::MAX
            } else {
                good + 8 + len
            });
            if len > MAX_LEN as u64 * 4 || good + 8 + len > total {
                break;
            }
            let mut body = vec![0u8; len as usize];
            if read_full(&mut reader, &mut body)? < body.len() || crc32fast::hash(&body) != crc {
                break;
            }
            match decode_op(&body) {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
            good += 8 + len;
            claimed_end = None;
        }
        drop(reader);
        let truncated_bytes = total - good;
        // Every record is one write made durable before the next starts, so a crash can only
        // tear the last one: a bad record that the file ends inside, or a zero-filled tail.
        // A bad record with intact data after it is damage, and cutting there would drop
        // acknowledged writes: refuse instead.
        let torn = match claimed_end {
            None => true,
            Some(end) if end < total => zero_tail(&file, good)?,
            // The bad record claims to run past the end: torn, unless its length field is the
            // damaged part and intact records follow.
            Some(_) => !record_after(&file, good, total)?,
        };
        if !torn {
            return Err(CodecError::Corrupt(format!(
                "{}: the record at byte {good} is damaged and {truncated_bytes} bytes follow it; \
                 replaying would lose acknowledged writes. Restore the collection from a \
                 snapshot",
                path.display()
            )));
        }
        if truncated_bytes > 0 {
            file.set_len(good)?;
            file.sync_all()?;
        }
        let last_seq = ops.last().map_or(0, |(s, _)| *s);
        Ok((
            Wal {
                file,
                path: path.to_path_buf(),
                size: good,
                last_seq,
            },
            Replay {
                ops,
                truncated_bytes,
            },
        ))
    }

    /// Appends `op` durably (fsync) and returns its sequence number.
    pub fn append(&mut self, op: &Op) -> Result<u64, CodecError> {
        let seq = self.last_seq + 1;
        let body = encode_op(seq, op)?;
        let mut record = Vec::with_capacity(8 + body.len());
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        record.extend_from_slice(&body);
        if let Err(e) = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data())
        {
            // Cut a partial record so the next append starts on a record boundary.
            let _ = self.file.set_len(self.size);
            return Err(e.into());
        }
        self.size += record.len() as u64;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Empties the log (after a checkpoint covered everything in it).
    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.size = 0;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a complete record with a valid checksum starts anywhere after `from` (the start of a
/// bad record). A tail too large to be one torn write counts as such.
fn record_after(file: &File, from: u64, total: u64) -> Result<bool, CodecError> {
    let rest = total - from;
    if rest > MAX_LEN as u64 * 4 + 8 {
        return Ok(true);
    }
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(rest as usize);
    reader.read_to_end(&mut buf)?;
    for at in 1..buf.len().saturating_sub(8) {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
        let body = at + 8..at + 8 + len;
        if len > 8
            && body.end <= buf.len()
            && crc32fast::hash(&buf[body.clone()]) == crc
            && decode_op(&buf[body]).is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether every byte from `from` to the end of `file` is zero (a tail the file system
/// extended but never wrote).
fn zero_tail(file: &File, from: u64) -> Result<bool, CodecError> {
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(from))?;
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, CodecError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<Op> {
        vec![
            Op::Upsert(vec![Point {
                id: "a".into(),
                vector: vec![1.0, -2.5],
                payload: vec![(
                    "tags".into(),
                    Value::List(vec![Value::Keyword("x".into()), Value::Integer(3)]),
                )],
            }]),
            Op::SetPayload {
                id: "a".into(),
                fields: vec![("p".into(), Some(Value::Float(1.5))), ("q".into(), None)],
            },
            Op::Delete(vec!["a".into(), "b".into()]),
            Op::SetIndexingThreshold(20_000),
        ]
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut_at_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        {
            let (mut wal, replay) = Wal::open(&path).unwrap();
            assert!(replay.ops.is_empty());
            for op in ops() {
                wal.append(&op).unwrap();
            }
        }
        let (_, replay) = Wal::open(&path).unwrap();
        let got: Vec<Op> = replay.ops.into_iter().map(|(_, op)| op).collect();
        assert_eq!(got, ops());
        let full = std::fs::read(&path).unwrap();
        // Every truncation point keeps exactly the records that are complete.
        let mut boundaries = vec![0usize];
        let mut at = 0;
        while at < full.len() {
            let len = u32::from_le_bytes(full[at..at + 4].try_into().unwrap()) as usize;
            at += 8 + len;
            boundaries.push(at);
        }
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (wal, replay) = Wal::open(&path).unwrap();
            let complete = boundaries.iter().filter(|b| **b <= cut).count() - 1;
            assert_eq!(replay.ops.len(), complete, "cut at {cut}");
            assert_eq!(wal.size() as usize, boundaries[complete]);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len() as usize,
                boundaries[complete]
            );
        }
        // A zero-filled tail (extended, never written) is cut like a torn record.
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0; 300]);
        std::fs::write(&path, &zeros).unwrap();
        assert_eq!(Wal::open(&path).unwrap().1.ops.len(), ops().len());
    }

    proptest::proptest! {
        /// Damage anywhere is either refused or cut where it starts, and then only when no
        /// intact record follows (a torn write looks like that): replay never returns a
        /// different history, nor drops an intact acknowledged record.
        #[test]
        fn damage_before_the_last_record_is_refused(
            flips in proptest::collection::vec((0usize..10_000, 1u8..=255), 1..4)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("wal.log");
            {
                let (mut wal, _) = Wal::open(&path).unwrap();
                for op in ops() {
                    wal.append(&op).unwrap();
                }
            }
            let mut bytes = std::fs::read(&path).unwrap();
            // Where each record starts and ends.
            let mut records = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let end = at + 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                records.push(at..end);
                at = end;
            }
            let original = bytes.clone();
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            // Flips can cancel out: a record is damaged when one of its bytes differs.
            let intact: Vec<bool> = records
                .iter()
                .map(|r| bytes[r.clone()] == original[r.clone()])
                .collect();
            match Wal::open(&path) {
                Err(CodecError::Corrupt(m)) => proptest::prop_assert!(m.contains("damaged")),
                Err(e) => proptest::prop_assert!(false, "unexpected error {}", e),
                Ok((_, replay)) => {
                    let kept = replay.ops.len();
                    proptest::prop_assert!(
                        intact[kept..].iter().all(|ok| !ok),
                        "intact records after the damage were cut silently: kept {}, intact {:?}",
                        kept,
                        intact
                    );
                    let got: Vec<Op> = replay.ops.into_iter().map(|(_, op)| op).collect();
                    proptest::prop_assert_eq!(&got[..], &ops()[..got.len()]);
                }
            }
        }
    }
}
