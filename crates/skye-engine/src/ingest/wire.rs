//! Skye's binary encoding of embedding events, for the records of its own event log.
//!
//! An embedding event in JSON is ~20 bytes of decimal text per float and most of a consumer's
//! time goes into parsing it back. The ingest API decodes each event once to validate it; when
//! the log is the embedded one it stores that decoded event in this encoding (floats as raw
//! little-endian bytes), so the consumer copies the vector instead of parsing it. Kafka topics
//! keep JSON, which other consumers read. [`decode_embedding`] takes either, told apart by
//! [`MAGIC`] (JSON text never starts with a NUL byte).
//!
//! Layout after the magic and a version byte: strings and lists length-prefixed (u32), integers
//! little-endian, fields in the order of [`EmbeddingEvent`].

use std::collections::BTreeMap;

use super::events::{EmbeddingEvent, IndexSpace, SearchSpace};

/// First bytes of an encoded event.
pub const MAGIC: &[u8; 4] = b"\0SKE";
const VERSION: u8 = 1;

/// An embedding event from a record's value: this encoding, or the JSON of the spec.
pub fn decode_embedding(value: &[u8]) -> Result<EmbeddingEvent, String> {
    if value.starts_with(MAGIC) {
        decode_binary(value)
    } else {
        serde_json::from_slice(value).map_err(|e| e.to_string())
    }
}

/// An embedding event in this encoding only (JSON is refused).
pub fn decode_binary(value: &[u8]) -> Result<EmbeddingEvent, String> {
    let rest = value
        .strip_prefix(MAGIC)
        .ok_or("it does not start with Skye's binary event marker")?;
    decode(rest)
}

/// `event` in this encoding, magic first.
pub fn encode_embedding(event: &EmbeddingEvent) -> Result<Vec<u8>, String> {
    let space = &event.index_space;
    let floats =
        space.embedding.len() + event.search_space.as_ref().map_or(0, |s| s.embedding.len());
    let mut out = Vec::with_capacity(128 + 4 * floats);
    encode_into(event, &mut out)?;
    Ok(out)
}

/// The media type of an ingest body of binary events: each one's length (u32, little-endian)
/// followed by its encoding ([`push_frame`]).
pub const BINARY_CONTENT_TYPE: &str = "application/x-skye-events";

/// Appends `event` to an ingest body of [`BINARY_CONTENT_TYPE`].
pub fn push_frame(body: &mut Vec<u8>, event: &EmbeddingEvent) -> Result<(), String> {
    let at = body.len();
    body.extend_from_slice(&[0; 4]);
    let written = encode_into(event, body)
        .and_then(|()| u32::try_from(body.len() - at - 4).map_err(|_| TOO_LONG.to_string()));
    match written {
        Ok(len) => {
            body[at..at + 4].copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            body.truncate(at);
            Err(e)
        }
    }
}

/// The events of an ingest body of [`BINARY_CONTENT_TYPE`], each as its encoded bytes.
pub fn frames(body: &[u8]) -> Frames<'_> {
    Frames(body)
}

/// Iterator of [`frames`]; a body cut inside a frame ends it with an error.
#[derive(Debug)]
pub struct Frames<'a>(&'a [u8]);

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut r = Reader(self.0);
        let frame = r.len().and_then(|n| r.take(n));
        self.0 = if frame.is_ok() { r.0 } else { &[] };
        Some(frame.map_err(|_| "the body ends inside an event".to_string()))
    }
}

fn encode_into(event: &EmbeddingEvent, out: &mut Vec<u8>) -> Result<(), String> {
    let space = &event.index_space;
    let mut w = Writer(out);
    w.0.extend_from_slice(MAGIC);
    w.0.push(VERSION);
    w.str(&event.entity)?;
    w.str(&event.model_name)?;
    w.str(&event.candidate_id)?;
    w.str(&event.environment)?;
    w.i64(event.embedding_store_version);
    w.str(&event.partition)?;
    w.floats(&space.embedding)?;
    w.len(space.variants_version_map.len())?;
    for (k, v) in &space.variants_version_map {
        w.str(k)?;
        w.i64(*v);
    }
    w.len(space.variants_index_map.len())?;
    for (k, v) in &space.variants_index_map {
        w.str(k)?;
        w.0.push(u8::from(*v));
    }
    w.str(&space.operation)?;
    w.len(space.payload.len())?;
    for (k, v) in &space.payload {
        w.str(k)?;
        w.str(v)?;
    }
    match &event.search_space {
        None => w.0.push(0),
        Some(s) => {
            w.0.push(1);
            w.floats(&s.embedding)?;
        }
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<EmbeddingEvent, String> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!(
            "binary event of version {version}; this build reads {VERSION}"
        ));
    }
    let entity = r.str()?;
    let model_name = r.str()?;
    let candidate_id = r.str()?;
    let environment = r.str()?;
    let embedding_store_version = r.i64()?;
    let partition = r.str()?;
    let embedding = r.floats()?;
    let mut variants_version_map = BTreeMap::new();
    for _ in 0..r.len()? {
        variants_version_map.insert(r.str()?, r.i64()?);
    }
    let mut variants_index_map = BTreeMap::new();
    for _ in 0..r.len()? {
        variants_index_map.insert(r.str()?, r.u8()? != 0);
    }
    let operation = r.str()?;
    let mut payload = BTreeMap::new();
    for _ in 0..r.len()? {
        payload.insert(r.str()?, r.str()?);
    }
    let search_space = match r.u8()? {
        0 => None,
        _ => Some(SearchSpace {
            embedding: r.floats()?,
        }),
    };
    if !r.0.is_empty() {
        return Err(format!(
            "{} bytes after the end of a binary event",
            r.0.len()
        ));
    }
    Ok(EmbeddingEvent {
        entity,
        model_name,
        candidate_id,
        environment,
        embedding_store_version,
        partition,
        index_space: IndexSpace {
            embedding,
            variants_version_map,
            variants_index_map,
            operation,
            payload,
        },
        search_space,
    })
}

struct Writer<'a>(&'a mut Vec<u8>);

/// A field too long for its u32 length (an ingest body is at most tens of MiB).
const TOO_LONG: &str = "an event field over 4 GiB";

impl Writer<'_> {
    fn len(&mut self, n: usize) -> Result<(), String> {
        let n = u32::try_from(n).map_err(|_| TOO_LONG.to_string())?;
        self.0.extend_from_slice(&n.to_le_bytes());
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), String> {
        self.len(s.len())?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn floats(&mut self, v: &[f32]) -> Result<(), String> {
        self.len(v.len())?;
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("binary event cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn i64(&mut self) -> Result<i64, String> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "binary event with a string that is not UTF-8".into())
    }

    fn floats(&mut self) -> Result<Vec<f32>, String> {
        let n = self.len()?;
        let b = self.take(
            n.checked_mul(4)
                .ok_or("binary event with an impossible length")?,
        )?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EmbeddingEvent {
        serde_json::from_str(
            r#"{"entity":"catalog","model_name":"intent","candidate_id":42,"environment":"prod",
                "embedding_store_version":3,"partition":"7",
                "index_space":{"embedding":[0.5,-1.25,3e-7,1e30],
                  "variants_version_map":{"organic":2,"ads":1},
                  "variants_index_map":{"organic":true,"ads":false},
                  "operation":"ADD","payload":{"price":120,"tags":["a","b"],"in_stock":true}},
                "search_space":{"embedding":[1.0,2.0]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn an_event_comes_back_as_its_json_decodes() {
        let e = event();
        let bytes = encode_embedding(&e).unwrap();
        assert_eq!(decode_embedding(&bytes).unwrap(), e);
        let mut eof = EmbeddingEvent {
            candidate_id: "EOF".into(),
            partition: "2".into(),
            ..Default::default()
        };
        assert_eq!(
            decode_embedding(&encode_embedding(&eof).unwrap()).unwrap(),
            eof
        );
        eof.search_space = Some(SearchSpace::default());
        assert_eq!(
            decode_embedding(&encode_embedding(&eof).unwrap()).unwrap(),
            eof
        );
    }

    #[test]
    fn a_binary_body_splits_into_its_events() {
        let (a, b) = (event(), EmbeddingEvent::default());
        let mut body = Vec::new();
        push_frame(&mut body, &a).unwrap();
        push_frame(&mut body, &b).unwrap();
        let events: Vec<EmbeddingEvent> = frames(&body)
            .map(|f| decode_embedding(f.unwrap()).unwrap())
            .collect();
        assert_eq!(events, [a, b]);
        let cut: Vec<_> = frames(&body[..body.len() - 1]).collect();
        assert_eq!(cut.len(), 2);
        assert!(cut[1].as_ref().unwrap_err().contains("ends inside"));
        assert_eq!(frames(&[]).count(), 0);
    }

    #[test]
    fn json_records_still_decode() {
        let json = serde_json::to_vec(&event()).unwrap();
        assert_eq!(decode_embedding(&json).unwrap(), event());
        assert!(decode_binary(&json).unwrap_err().contains("marker"));
        assert!(decode_embedding(b"{\"index_space\":7}").is_err());
    }

    #[test]
    fn damaged_binary_events_are_errors_not_panics() {
        let bytes = encode_embedding(&event()).unwrap();
        for cut in MAGIC.len()..bytes.len() {
            let err = decode_embedding(&bytes[..cut]).unwrap_err();
            assert!(err.contains("cut short"), "{cut}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode_embedding(&longer)
                .unwrap_err()
                .contains("after the end")
        );
        let mut future = bytes.clone();
        future[MAGIC.len()] = 9;
        assert!(decode_embedding(&future).unwrap_err().contains("version 9"));
        // A float count that overflows the length it implies.
        let mut huge = MAGIC.to_vec();
        huge.push(VERSION);
        for _ in 0..4 {
            huge.extend_from_slice(&0u32.to_le_bytes());
        }
        huge.extend_from_slice(&0i64.to_le_bytes());
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_embedding(&huge).is_err());
    }
}
