//! Rules for the names of entities, models, variants, stores and payload fields.
//!
//! Names become etcd path segments and directory names of the embedded vector store, so `/`,
//! white space and a leading `.` are refused. The original compares names after lower-casing them and
//! dropping `-` (spec AC §2.1); two names that normalise alike would collide in an existing etcd
//! tree, so registration refuses the second one.

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks one name; returns a message describing the first problem.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is required".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} bytes"));
    }
    // `.` and `..` are path segments with a meaning, and dot-names are the embedded store's own.
    if name.starts_with('.') {
        return Err("must not start with '.'".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "contains '{c}'; only ASCII letters, digits, '_', '-' and '.' are allowed"
        ));
    }
    Ok(())
}

/// The form under which the original's etcd loader matches names: lower-case, `-` removed.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names_and_rejects_path_characters() {
        assert!(check_name("product-embeddings_v1.2").is_ok());
        assert_eq!(check_name("").unwrap_err(), "is required");
        assert!(check_name("a/b").unwrap_err().contains("'/'"));
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        for dotted in [".", "..", ".snapshots"] {
            assert!(check_name(dotted).unwrap_err().contains("'.'"), "{dotted}");
        }
    }

    #[test]
    fn normalisation_matches_the_original_loader() {
        assert_eq!(normalize("Vector-Db-Read-Version"), "vectordbreadversion");
        assert_eq!(normalize("my_model"), "my_model");
    }
}
