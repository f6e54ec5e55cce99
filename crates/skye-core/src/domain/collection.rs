//! Typed identities of a variant's storage: which variant ([`VariantKey`]) and which version of
//! its vectors ([`CollectionRef`]). They are built once from the registry snapshot
//! ([`super::Variant::key`], [`super::Variant::collection`]) and passed down to the vector stores,
//! which derive their own storage names from them; nothing parses a name back into its parts.
//!
//! Joining names with `_` is ambiguous (`a_b` + `c` and `a` + `b_c` both give `a_b_c`), so the
//! joined form is only produced where a remote engine needs the original's naming
//! ([`CollectionRef::original_name`]), and registration refuses variants whose joined names
//! would meet there.

use std::fmt;
use std::sync::Arc;

use super::VectorDbType;

/// One variant, as its vector stores see it: where it lives and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariantKey {
    inner: Arc<VariantNames>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct VariantNames {
    entity: String,
    model: String,
    variant: String,
    db: VectorDbType,
}

impl VariantKey {
    pub fn new(entity: &str, model: &str, variant: &str, db: VectorDbType) -> Self {
        VariantKey {
            inner: Arc::new(VariantNames {
                entity: entity.to_string(),
                model: model.to_string(),
                variant: variant.to_string(),
                db,
            }),
        }
    }

    /// A variant of Skye's embedded engine (tests, benchmarks).
    pub fn embedded(entity: &str, model: &str, variant: &str) -> Self {
        VariantKey::new(entity, model, variant, VectorDbType::Embedded)
    }

    pub fn entity(&self) -> &str {
        &self.inner.entity
    }

    pub fn model(&self) -> &str {
        &self.inner.model
    }

    pub fn variant(&self) -> &str {
        &self.inner.variant
    }

    /// The vector DB that holds the variant's collections.
    pub fn db(&self) -> VectorDbType {
        self.inner.db
    }

    /// Version `version` of this variant's vectors.
    pub fn at(&self, version: i64) -> CollectionRef {
        CollectionRef {
            variant: self.clone(),
            version,
        }
    }

    /// The part of this variant's storage names on a remote engine that the version completes,
    /// where that engine joins names: Qdrant's `<variant>_<model>_<n>`, Eigenix's
    /// `<model>_<variant>_<n>`. Two variants of one engine share storage exactly when their
    /// stems are equal; `None` where names are not joined (Skye's own engine, NGT).
    pub fn remote_stem(&self) -> Option<String> {
        let VariantNames { model, variant, .. } = &*self.inner;
        match self.inner.db {
            VectorDbType::Qdrant => Some(format!("{variant}_{model}")),
            VectorDbType::Eigenix => Some(format!("{model}_{variant}")),
            VectorDbType::Embedded | VectorDbType::Ngt => None,
        }
    }

    /// `<variant>_<model>`: the original's collection names without the version. Two variants
    /// share a collection under the original's naming exactly when their stems are equal (the
    /// version after the last `_` has no `_` of its own).
    pub fn original_stem(&self) -> String {
        format!("{}_{}", self.inner.variant, self.inner.model)
    }
}

impl fmt::Display for VariantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.inner.entity, self.inner.model, self.inner.variant
        )
    }
}

/// One collection: version `version` of a variant's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionRef {
    pub variant: VariantKey,
    pub version: i64,
}

impl CollectionRef {
    /// An embedded-engine collection (tests, benchmarks).
    pub fn embedded(entity: &str, model: &str, variant: &str, version: i64) -> Self {
        VariantKey::embedded(entity, model, variant).at(version)
    }

    /// `<variant>_<model>_<version>`, the original's collection name (spec serving §3.3.1): what
    /// Qdrant collections are called, so that a migrating user finds them.
    pub fn original_name(&self) -> String {
        format!("{}_{}", self.variant.original_stem(), self.version)
    }
}

impl fmt::Display for CollectionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.variant, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_keep_their_parts_and_the_original_name_is_only_derived() {
        let a = CollectionRef::embedded("e", "c", "a_b", 1);
        let b = CollectionRef::embedded("e", "b_c", "a", 1);
        assert_eq!(
            a.original_name(),
            b.original_name(),
            "the joined form is ambiguous"
        );
        assert_ne!(a, b, "the typed identity is not");
        assert_eq!(a.to_string(), "e/c/a_b@1");
        assert_eq!(
            CollectionRef::embedded("e", "product-embeddings", "v1", 3).original_name(),
            "v1_product-embeddings_3"
        );
    }
}
