//! The closed sets of the domain. Each parses case-insensitively (the original's quick-start sends
//! `"Cosine"`, spec AC §8 B5) and is written in the canonical upper-case form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error returned when a string is not a member of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}', expected one of: {}", .expected.join(", "))]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical (upper-case) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                $( if t.eq_ignore_ascii_case($text) { return Ok($name::$variant); } )+
                Err(UnknownVariant {
                    what: $what,
                    value: s.to_string(),
                    expected: &[$($text),+],
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// How vectors are compared. DOT and COSINE are similarities (higher is better), EUCLIDEAN
    /// and MANHATTAN are distances (lower is better).
    DistanceFunction, "distance_function" {
        Dot => "DOT",
        #[default]
        Cosine => "COSINE",
        Euclidean => "EUCLIDEAN",
        Manhattan => "MANHATTAN",
    }
}

string_enum! {
    /// RESET jobs build a fresh collection and switch to it; DELTA jobs update in place.
    ModelType, "model_type" {
        #[default]
        Reset => "RESET",
        Delta => "DELTA",
    }
}

string_enum! {
    /// The lifecycle state of a variant (spec AC §3.4).
    VariantState, "variant_state" {
        DataIngestionStarted => "DATA_INGESTION_STARTED",
        DataIngestionCompleted => "DATA_INGESTION_COMPLETED",
        IndexingStarted => "INDEXING_STARTED",
        IndexingInProgress => "INDEXING_IN_PROGRESS",
        IndexingCompletedWithReset => "INDEXING_COMPLETED_WITH_RESET",
        IndexingCompleted => "INDEXING_COMPLETED",
        ModelVersionUpdated => "MODEL_VERSION_UPDATED",
        #[default]
        Completed => "COMPLETED",
    }
}

string_enum! {
    /// SCALE_UP variants serve production traffic; EXPERIMENT variants can be promoted to
    /// another vector-DB host.
    VariantType, "type" {
        #[default]
        ScaleUp => "SCALE_UP",
        Experiment => "EXPERIMENT",
    }
}

string_enum! {
    /// Which vector database holds a variant's collections. EMBEDDED is Skye's own engine.
    VectorDbType, "vector_db_type" {
        #[default]
        Embedded => "EMBEDDED",
        Qdrant => "QDRANT",
        Ngt => "NGT",
        Eigenix => "EIGENIX",
    }
}

string_enum! {
    /// The type of a payload field (`vector_db_config.payload.<field>.field_schema`).
    FieldSchema, "field_schema" {
        #[default]
        Keyword => "KEYWORD",
        Integer => "INTEGER",
        Float => "FLOAT",
        Boolean => "BOOLEAN",
        Datetime => "DATETIME",
        Text => "TEXT",
        Geo => "GEO",
    }
}

impl DistanceFunction {
    /// Whether a higher score is a better match.
    pub fn higher_is_better(self) -> bool {
        matches!(self, DistanceFunction::Dot | DistanceFunction::Cosine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_is_case_insensitive_and_writing_is_canonical() {
        assert_eq!(
            "Cosine".parse::<DistanceFunction>(),
            Ok(DistanceFunction::Cosine)
        );
        assert_eq!(
            " dot ".parse::<DistanceFunction>(),
            Ok(DistanceFunction::Dot)
        );
        assert_eq!(DistanceFunction::Euclidean.to_string(), "EUCLIDEAN");
        let json = serde_json::to_string(&VariantState::IndexingCompletedWithReset).unwrap();
        assert_eq!(json, "\"INDEXING_COMPLETED_WITH_RESET\"");
    }

    #[test]
    fn unknown_values_name_the_choices() {
        let err = "cosin".parse::<DistanceFunction>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown distance_function 'cosin', expected one of: DOT, COSINE, EUCLIDEAN, MANHATTAN"
        );
        assert!(serde_json::from_str::<ModelType>("\"SNAPSHOT\"").is_err());
    }

    #[test]
    fn every_member_round_trips() {
        for v in VariantState::ALL {
            assert_eq!(v.as_str().parse::<VariantState>(), Ok(*v));
        }
        for v in VectorDbType::ALL {
            assert_eq!(v.as_str().to_lowercase().parse::<VectorDbType>(), Ok(*v));
        }
    }
}
