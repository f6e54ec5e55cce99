//! The gRPC API of Skye, generated from `proto/skye.proto`, and the clients of the external
//! vector DBs (`ngt`, `eigenix`). Feature `grpc` (default) adds the tonic services and clients;
//! without it the crate is the prost messages alone.
//!
//! The proto has no package, so every type lives at the top of this crate and the method paths
//! are the original's (`/SkyeSimilarCandidateService/getSimilarCandidates`, …).

#![allow(
    missing_debug_implementations,
    clippy::doc_markdown,
    clippy::large_enum_variant,
    reason = "generated code"
)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));

/// The NGT search service (package `embedding`, spec serving §3.4), for NGT variants.
#[cfg(feature = "grpc")]
pub mod ngt {
    include!(concat!(env!("OUT_DIR"), "/embedding.rs"));
}

/// The Eigenix search service (package `eigenix`, spec serving §3.5), for EIGENIX variants.
#[cfg(feature = "grpc")]
pub mod eigenix {
    include!(concat!(env!("OUT_DIR"), "/eigenix.rs"));
}

/// The encoded descriptor set of `skye.proto`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/skye_descriptor.bin"));

/// serde helpers of the JSON mapping (feature `json`).
#[cfg(feature = "json")]
pub mod json {
    /// An `Operator` field (an `i32` in the message) as its proto name; read from the name or
    /// the number.
    pub mod operator {
        use serde::{Deserialize, Deserializer, Serializer, de::Error};

        use crate::Operator;

        pub fn serialize<S: Serializer>(op: &i32, s: S) -> Result<S::Ok, S::Error> {
            match Operator::try_from(*op) {
                Ok(named) => s.serialize_str(named.as_str_name()),
                Err(_) => s.serialize_i32(*op),
            }
        }

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(i32),
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
            match NameOrNumber::deserialize(d)? {
                NameOrNumber::Number(n) => Ok(n),
                NameOrNumber::Name(name) => Operator::from_str_name(&name)
                    .map(|op| op as i32)
                    .ok_or_else(|| {
                        D::Error::custom(format!(
                            "unknown filter operator '{name}' (IN, NIN, EX, SEARCH, LTE, GTE, \
                             BTWE, BTW, LT, GT, LAST_X_DAYS, WTHN)"
                        ))
                    }),
            }
        }
    }
}

/// Full gRPC method paths, as clients of the original call them.
pub mod paths {
    pub const GET_SIMILAR_CANDIDATES: &str = "/SkyeSimilarCandidateService/getSimilarCandidates";
    pub const GET_CANDIDATE_EMBEDDING_SCORES: &str =
        "/SkyeEmbeddingService/getCandidateEmbeddingScores";
    pub const GET_EMBEDDINGS_FOR_CANDIDATES: &str =
        "/SkyeEmbeddingService/getEmbeddingsForCandidates";
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Field numbers and wire types, checked byte by byte against hand-encoded protobuf.
    #[test]
    fn field_numbers_match_the_original_proto() {
        let req = SkyeRequest {
            entity: "e".into(),
            limit: 3,
            model_name: "m".into(),
            variant: "v".into(),
            embeddings: vec![Embedding {
                embedding: vec![1.0],
            }],
            global_filters: Some(Filters {
                filter: vec![Filter {
                    field: "f".into(),
                    op: Operator::Gte as i32,
                    values: vec!["1".into()],
                }],
            }),
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        let mut expected = vec![0x0a, 1, b'e', 0x18, 3, 0x22, 1, b'm', 0x2a, 1, b'v'];
        // embeddings (8): Embedding { embedding (1, packed doubles) }
        expected.extend([0x42, 10, 0x0a, 8]);
        expected.extend(1.0f64.to_le_bytes());
        // globalFilters (9): Filters { filter (1): Filter { field 1, op 2 (GTE = 5), values 3 } }
        expected.extend([0x4a, 10, 0x0a, 8, 0x0a, 1, b'f', 0x10, 5, 0x1a, 1, b'1']);
        assert_eq!(bytes, expected);
        assert_eq!(SkyeRequest::decode(bytes.as_slice()).unwrap(), req);
    }

    #[test]
    fn every_operator_keeps_its_number() {
        let ops = [
            (Operator::In, 0),
            (Operator::Nin, 1),
            (Operator::Ex, 2),
            (Operator::Search, 3),
            (Operator::Lte, 4),
            (Operator::Gte, 5),
            (Operator::Btwe, 6),
            (Operator::Btw, 7),
            (Operator::Lt, 8),
            (Operator::Gt, 9),
            (Operator::LastXDays, 10),
            (Operator::Wthn, 11),
        ];
        for (op, n) in ops {
            assert_eq!(op as i32, n);
        }
        let bulk = SkyeBulkEmbeddingRequest {
            model_name: "m".into(),
            ..Default::default()
        };
        assert_eq!(
            bulk.encode_to_vec(),
            vec![0x22, 1, b'm'],
            "modelName is field 4 (3 is unused)"
        );
        let score = CandidateEmbeddingScore {
            candidate_id: "c".into(),
            score: 0.5,
        };
        let mut expected = vec![0x0a, 1, b'c', 0x11];
        expected.extend(0.5f64.to_le_bytes());
        assert_eq!(score.encode_to_vec(), expected);
    }

    #[test]
    fn method_paths_have_no_package() {
        use skye_similar_candidate_service_server::SkyeSimilarCandidateServiceServer as S;
        use tonic::server::NamedService;
        assert_eq!(
            <S<Unimplemented> as NamedService>::NAME,
            "SkyeSimilarCandidateService"
        );
        assert!(
            paths::GET_SIMILAR_CANDIDATES
                .starts_with(&format!("/{}/", <S<Unimplemented> as NamedService>::NAME))
        );
    }

    struct Unimplemented;

    #[tonic::async_trait]
    impl skye_similar_candidate_service_server::SkyeSimilarCandidateService for Unimplemented {
        async fn get_similar_candidates(
            &self,
            _: tonic::Request<SkyeRequest>,
        ) -> Result<tonic::Response<SkyeResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("test double"))
        }
    }
}
