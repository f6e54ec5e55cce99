//! The original's distributed-cache format for similar candidates (spec serving §4.2–4.4), for
//! Skye pods that share a Redis with Go pods or start on a warm one
//! (`backends.redis.key_format = "original"`).
//!
//! Keys are `sc:<entity>:<model>:<variant>:<Q>:<FH>:<AH>:V2`, each hash an FNV-1a 64 written as
//! 16 lowercase hex digits (`e` for empty input); values are the protobuf `CandidateResponse`
//! the RPC returns. The format has no `limit`, `offset` or read version, so Skye follows the
//! original's rules around it: a cached list shorter than `limit − 1` (and not empty) is a miss
//! unless the variant sets `partial-hit-disabled`, a longer one is cut to `limit`, and a request
//! with an `offset` bypasses this cache (its key would collide with the first page). Entries
//! outlive a version switch until their TTL, as in the original (§9 S23): the price of sharing.

use prost::Message;
use skye_core::hash::Fnv1a64;
use skye_core::vector_store::ScoredPoint;
use skye_proto::{Candidate, CandidateResponse, Meta};

use super::filters::FilterSpec;

/// FNV-1a 64 over the bytes fed to it, written the original's way.
#[derive(Debug, Clone, Copy)]
struct Fnv {
    hash: Fnv1a64,
    /// Nothing fed yet (not a byte).
    empty: bool,
}

impl Fnv {
    fn new() -> Self {
        Fnv {
            hash: Fnv1a64::default(),
            empty: true,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.hash.write(bytes);
        self.empty &= bytes.is_empty();
    }

    /// `%016x`, or `e` when nothing (no byte) was fed.
    fn text(self) -> String {
        if self.empty {
            "e".to_string()
        } else {
            format!("{:016x}", self.hash.finish())
        }
    }
}

/// What a query searches by.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    /// Mode B: a stored item, keyed by its id verbatim.
    Id(&'a str),
    /// Mode A: a vector, keyed by the hash of its float32 little-endian bytes.
    Vector(&'a [f32]),
}

/// The original's key of one similar-candidates query.
pub fn similar_key(
    entity: &str,
    model: &str,
    variant: &str,
    query: Query<'_>,
    filters: &[FilterSpec],
    attributes: &[String],
) -> String {
    let q = match query {
        Query::Id(id) => id.to_string(),
        Query::Vector(v) => {
            let mut h = Fnv::new();
            v.iter().for_each(|x| h.feed(&x.to_le_bytes()));
            h.text()
        }
    };
    let mut fh = Fnv::new();
    for f in filters {
        fh.feed(f.field.as_bytes());
        fh.feed(&f.op.to_proto().to_le_bytes());
        f.values.iter().for_each(|v| fh.feed(v.as_bytes()));
    }
    let mut ah = Fnv::new();
    attributes.iter().for_each(|a| ah.feed(a.as_bytes()));
    format!(
        "sc:{entity}:{model}:{variant}:{q}:{}:{}:V2",
        fh.text(),
        ah.text()
    )
}

/// Hits as the RPC's `CandidateResponse`.
pub fn to_response(hits: Vec<ScoredPoint>) -> CandidateResponse {
    CandidateResponse {
        candidates: hits
            .into_iter()
            .map(|h| Candidate {
                id: h.id,
                meta: Some(Meta {
                    score: f64::from(h.score),
                    attributes_map: h.payload.into_iter().collect(),
                }),
            })
            .collect(),
    }
}

/// The cache value of an answer.
pub fn encode(hits: &[ScoredPoint]) -> Vec<u8> {
    to_response(hits.to_vec()).encode_to_vec()
}

/// A cached value as hits, by the original's hit rules; `None` = a miss (undecodable, or a
/// partial answer the variant does not accept).
pub fn decode(bytes: &[u8], limit: usize, partial_hits: bool) -> Option<Vec<ScoredPoint>> {
    let response = CandidateResponse::decode(bytes).ok()?;
    let n = response.candidates.len();
    if !partial_hits && n > 0 && n + 1 < limit {
        return None;
    }
    Some(
        response
            .candidates
            .into_iter()
            .take(limit)
            .map(|c| {
                let meta = c.meta.unwrap_or_default();
                ScoredPoint {
                    id: c.id,
                    score: meta.score as f32,
                    payload: meta.attributes_map.into_iter().collect(),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::filters::FilterOp;

    fn fnv(bytes: &[u8]) -> String {
        let mut h = Fnv::new();
        h.feed(bytes);
        h.text()
    }

    #[test]
    fn fnv1a_64_matches_the_published_vectors() {
        // From the FNV reference test suite (Landon Curt Noll).
        assert_eq!(fnv(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv(b"foobar"), "85944171f73967e8");
        assert_eq!(fnv(b""), "e", "empty input is the literal e");
    }

    #[test]
    fn keys_follow_the_original_layout() {
        let filters = [FilterSpec {
            field: "brand".into(),
            op: FilterOp::Nin,
            values: vec!["a".into(), "b".into()],
        }];
        let key = similar_key(
            "catalog",
            "m",
            "v",
            Query::Id("123"),
            &filters,
            &["brand".into(), "price".into()],
        );
        // FH: "brand" ++ 1i32 LE ++ "a" ++ "b"; AH: "brand" ++ "price".
        let mut fh = b"brand".to_vec();
        fh.extend_from_slice(&1i32.to_le_bytes());
        fh.extend_from_slice(b"ab");
        assert_eq!(
            key,
            format!("sc:catalog:m:v:123:{}:{}:V2", fnv(&fh), fnv(b"brandprice"))
        );
        let vector = [1.0f32, -0.5];
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            similar_key("e", "m", "v", Query::Vector(&vector), &[], &[]),
            format!("sc:e:m:v:{}:e:e:V2", fnv(&bytes))
        );
        assert_eq!(
            similar_key("e", "m", "v", Query::Vector(&[]), &[], &[]),
            "sc:e:m:v:e:e:e:V2"
        );
    }

    #[test]
    fn values_are_candidate_responses_with_the_original_hit_rules() {
        let hits: Vec<ScoredPoint> = (0..4)
            .map(|i| ScoredPoint {
                id: i.to_string(),
                score: 1.0 - i as f32 / 10.0,
                payload: [("brand".to_string(), format!("b{i}"))].into(),
            })
            .collect();
        let bytes = encode(&hits);
        let back = CandidateResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.candidates[2].id, "2");
        assert_eq!(
            back.candidates[2].meta.as_ref().unwrap().attributes_map["brand"],
            "b2"
        );
        assert_eq!(decode(&bytes, 4, false).unwrap(), hits);
        assert_eq!(decode(&bytes, 2, false).unwrap(), hits[..2], "cut to limit");
        assert_eq!(
            decode(&bytes, 5, false).unwrap(),
            hits,
            "limit − 1 is a hit"
        );
        assert_eq!(decode(&bytes, 6, false), None, "partial: a miss");
        assert_eq!(
            decode(&bytes, 6, true).unwrap(),
            hits,
            "partial hits accepted"
        );
        assert_eq!(
            decode(&encode(&[]), 6, false).unwrap(),
            [],
            "empty: negative cache"
        );
        assert_eq!(decode(b"\xff\xff", 6, false), None, "garbage: a miss");
    }
}
