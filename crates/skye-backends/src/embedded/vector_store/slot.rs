//! A collection's place in the store.

use super::*;

/// Where a collection lives in the store: its identity without the vector-DB kind (every
/// collection here is embedded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Slot {
    pub(super) entity: String,
    pub(super) model: String,
    pub(super) variant: String,
    pub(super) version: i64,
}

impl Slot {
    pub(super) fn of(c: &CollectionRef) -> Self {
        Slot {
            entity: c.variant.entity().to_string(),
            model: c.variant.model().to_string(),
            variant: c.variant.variant().to_string(),
            version: c.version,
        }
    }

    pub(super) fn holds(&self, v: &VariantKey) -> bool {
        self.entity == v.entity() && self.model == v.model() && self.variant == v.variant()
    }

    /// `<entity>/<model>/<variant>/<version>`, with every part checked to be one plain path
    /// segment.
    pub(super) fn relative(&self) -> Result<PathBuf, VectorStoreError> {
        for (what, part) in [
            ("entity", &self.entity),
            ("model", &self.model),
            ("variant", &self.variant),
        ] {
            names::check_name(part)
                .and_then(|()| {
                    if part.starts_with('.') {
                        Err("must not start with '.'".to_string())
                    } else {
                        Ok(())
                    }
                })
                .map_err(|m| VectorStoreError::InvalidArgument(format!("{what} name {m}")))?;
        }
        Ok([&self.entity, &self.model, &self.variant]
            .iter()
            .collect::<PathBuf>()
            .join(self.version.to_string()))
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}@{}",
            self.entity, self.model, self.variant, self.version
        )
    }
}
