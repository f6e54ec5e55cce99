//! Little-endian binary encoding with a running CRC-32, for snapshots and WAL records.
//! Every read is bounds- and sanity-checked: a corrupt or truncated file is an error, never a
//! panic or an oversized allocation.

use std::io::{Read, Write};

use crate::distance::Metric;
use crate::payload::{GeoPoint, Value};

/// Longest string or list a decoder accepts (guards allocations against corrupt lengths).
pub const MAX_LEN: usize = 64 << 20;

/// Encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Corrupt(String),
}

pub struct Encoder<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            crc: crc32fast::Hasher::new(),
        }
    }

    pub fn bytes(&mut self, b: &[u8]) -> Result<(), CodecError> {
        self.crc.update(b);
        self.out.write_all(b)?;
        Ok(())
    }

    pub fn u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.bytes(&[v])
    }
    pub fn u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn f64(&mut self, v: f64) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn len(&mut self, n: usize) -> Result<(), CodecError> {
        self.u64(n as u64)
    }
    pub fn str(&mut self, s: &str) -> Result<(), CodecError> {
        self.len(s.len())?;
        self.bytes(s.as_bytes())
    }

    /// Writes 4-byte words, chunked to keep the temporary small for large arrays.
    fn words<T: Copy>(&mut self, v: &[T], to: fn(T) -> [u8; 4]) -> Result<(), CodecError> {
        for chunk in v.chunks(4096) {
            let mut buf = Vec::with_capacity(chunk.len() * 4);
            chunk.iter().for_each(|x| buf.extend_from_slice(&to(*x)));
            self.bytes(&buf)?;
        }
        Ok(())
    }

    pub fn f32s(&mut self, v: &[f32]) -> Result<(), CodecError> {
        self.words(v, f32::to_le_bytes)
    }

    pub fn u32s(&mut self, v: &[u32]) -> Result<(), CodecError> {
        self.words(v, u32::to_le_bytes)
    }

    pub fn metric(&mut self, m: Metric) -> Result<(), CodecError> {
        self.u8(match m {
            Metric::Dot => 0,
            Metric::Cosine => 1,
            Metric::Euclidean => 2,
            Metric::Manhattan => 3,
        })
    }

    pub fn value(&mut self, v: &Value) -> Result<(), CodecError> {
        match v {
            Value::Keyword(s) => {
                self.u8(0)?;
                self.str(s)
            }
            Value::Integer(i) => {
                self.u8(1)?;
                self.u64(*i as u64)
            }
            Value::Float(f) => {
                self.u8(2)?;
                self.f64(*f)
            }
            Value::Bool(b) => {
                self.u8(3)?;
                self.u8(u8::from(*b))
            }
            Value::Geo(g) => {
                self.u8(4)?;
                self.f64(g.lat)?;
                self.f64(g.lon)
            }
            Value::List(items) => {
                self.u8(5)?;
                self.len(items.len())?;
                items.iter().try_for_each(|i| self.value(i))
            }
        }
    }

    /// Writes the CRC of everything so far and returns the writer.
    pub fn finish(mut self) -> Result<W, CodecError> {
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        Ok(self.out)
    }
}

pub struct Decoder<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Decoder<R> {
    pub fn new(input: R) -> Self {
        Decoder {
            input,
            crc: crc32fast::Hasher::new(),
        }
    }

    pub fn bytes(&mut self, buf: &mut [u8]) -> Result<(), CodecError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => CodecError::Corrupt("truncated".into()),
            _ => CodecError::Io(e),
        })?;
        self.crc.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut b = [0u8; N];
        self.bytes(&mut b)?;
        Ok(b)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A length, refused above `max`.
    pub fn len(&mut self, max: usize) -> Result<usize, CodecError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| CodecError::Corrupt(format!("length {n} exceeds {max}")))
    }

    pub fn str(&mut self) -> Result<String, CodecError> {
        let n = self.len(MAX_LEN)?;
        let mut buf = vec![0u8; n];
        self.bytes(&mut buf)?;
        String::from_utf8(buf).map_err(|_| CodecError::Corrupt("invalid UTF-8".into()))
    }

    /// Reads `n` little-endian 4-byte words, converting each with `from`.
    fn words<T>(
        &mut self,
        n: usize,
        out: &mut Vec<T>,
        from: fn([u8; 4]) -> T,
    ) -> Result<(), CodecError> {
        let mut left = n;
        let mut buf = vec![0u8; 4096 * 4];
        while left > 0 {
            let take = left.min(4096);
            self.bytes(&mut buf[..take * 4])?;
            out.extend(
                buf[..take * 4]
                    .chunks_exact(4)
                    .map(|c| from([c[0], c[1], c[2], c[3]])),
            );
            left -= take;
        }
        Ok(())
    }

    pub fn f32s(&mut self, n: usize, out: &mut Vec<f32>) -> Result<(), CodecError> {
        self.words(n, out, f32::from_le_bytes)
    }

    pub fn u32s(&mut self, n: usize, out: &mut Vec<u32>) -> Result<(), CodecError> {
        self.words(n, out, u32::from_le_bytes)
    }

    pub fn metric(&mut self) -> Result<Metric, CodecError> {
        Ok(match self.u8()? {
            0 => Metric::Dot,
            1 => Metric::Cosine,
            2 => Metric::Euclidean,
            3 => Metric::Manhattan,
            t => return Err(CodecError::Corrupt(format!("unknown metric tag {t}"))),
        })
    }

    pub fn value(&mut self, depth: usize) -> Result<Value, CodecError> {
        if depth > 8 {
            return Err(CodecError::Corrupt("payload nested too deep".into()));
        }
        Ok(match self.u8()? {
            0 => Value::Keyword(self.str()?),
            1 => Value::Integer(self.u64()? as i64),
            2 => Value::Float(self.f64()?),
            3 => Value::Bool(self.u8()? != 0),
            4 => Value::Geo(GeoPoint {
                lat: self.f64()?,
                lon: self.f64()?,
            }),
            5 => {
                let n = self.len(MAX_LEN / 16)?;
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            t => return Err(CodecError::Corrupt(format!("unknown value tag {t}"))),
        })
    }

    /// Reads the trailing CRC and checks it against everything read so far.
    pub fn finish(mut self) -> Result<R, CodecError> {
        let expected = self.crc.clone().finalize();
        let mut b = [0u8; 4];
        self.input
            .read_exact(&mut b)
            .map_err(|_| CodecError::Corrupt("missing checksum".into()))?;
        if u32::from_le_bytes(b) != expected {
            return Err(CodecError::Corrupt("checksum mismatch".into()));
        }
        Ok(self.input)
    }
}
