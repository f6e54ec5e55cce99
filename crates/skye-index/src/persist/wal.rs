//! Write-ahead log: one record per acknowledged write, fsync'd before the write is applied.
//!
//! Record: `len: u32 | crc32(body): u32 | body`, body = `seq: u64 | op`. On open, records are
//! replayed up to the first incomplete or corrupt one; that tail (a write that was never
//! acknowledged) is cut off.

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
        loop {
            let mut header = [0u8; 8];
            if read_full(&mut reader, &mut header)? < 8 {
                break;
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
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
        }
        drop(reader);
        let truncated_bytes = total - good;
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
        // A flipped bit in the middle stops replay there.
        let mut bad = full.clone();
        bad[boundaries[1] + 12] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let (_, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay.ops.len(), 1);
    }
}
