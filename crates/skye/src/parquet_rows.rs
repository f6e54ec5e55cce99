//! Candidate rows from a Parquet file (`skye ingest FILE.parquet`).
//!
//! Columns: `id` (string or integer, required), `embedding` (list or fixed-size list of float32
//! or float64, required), `search_embedding` (same, optional), `operation` (string, optional);
//! every other column of a scalar type (string, integer, float, boolean) becomes a payload field
//! of the same name, as text; null values are left out. Snappy-compressed and uncompressed files
//! are read (pyarrow's default is Snappy).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

/// One row, as `skye ingest` needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetRow {
    pub id: String,
    pub embedding: Vec<f32>,
    pub search_embedding: Option<Vec<f32>>,
    pub operation: Option<String>,
    pub payload: BTreeMap<String, Value>,
}

/// Rows of a Parquet file, read batch by batch.
pub struct ParquetRows {
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    next: usize,
}

impl std::fmt::Debug for ParquetRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetRows").finish_non_exhaustive()
    }
}

impl ParquetRows {
    /// Opens `path`; returns the reader and the row count from the footer.
    pub fn open(path: &Path) -> anyhow::Result<(Self, u64)> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let schema = builder.schema().clone();
        for required in ["id", "embedding"] {
            if schema.field_with_name(required).is_err() {
                bail!(
                    "{}: no '{required}' column (columns: {:?})",
                    path.display(),
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                );
            }
        }
        let reader = builder.with_batch_size(4096).build()?;
        Ok((
            ParquetRows {
                reader,
                batch: None,
                next: 0,
            },
            rows,
        ))
    }

    pub fn next_row(&mut self) -> anyhow::Result<Option<ParquetRow>> {
        loop {
            if let Some(batch) = &self.batch
                && self.next < batch.num_rows()
            {
                let i = self.next;
                self.next += 1;
                return row(batch, i).map(Some);
            }
            match self.reader.next() {
                Some(batch) => {
                    self.batch = Some(batch.context("cannot decode a Parquet row group")?);
                    self.next = 0;
                }
                None => return Ok(None),
            }
        }
    }
}

fn row(batch: &RecordBatch, i: usize) -> anyhow::Result<ParquetRow> {
    let schema = batch.schema();
    let mut out = ParquetRow {
        id: String::new(),
        embedding: Vec::new(),
        search_embedding: None,
        operation: None,
        payload: BTreeMap::new(),
    };
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        if column.is_null(i) {
            continue;
        }
        match name {
            "embedding" => out.embedding = vector(column, i).context("column 'embedding'")?,
            "search_embedding" => {
                out.search_embedding = Some(vector(column, i).context("column 'search_embedding'")?)
            }
            "id" => {
                out.id = scalar(column, i)
                    .and_then(|v| match v {
                        Value::String(s) => Some(s),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .context("column 'id' must hold strings or integers")?
            }
            "operation" => {
                out.operation = scalar(column, i).and_then(|v| v.as_str().map(String::from))
            }
            _ => {
                if let Some(v) = scalar(column, i) {
                    out.payload.insert(name.to_string(), v);
                }
            }
        }
    }
    if out.id.is_empty() {
        bail!("a row has no id");
    }
    Ok(out)
}

/// A list cell as f32s.
fn vector(column: &ArrayRef, i: usize) -> anyhow::Result<Vec<f32>> {
    let values: ArrayRef = if let Some(list) = column.as_list_opt::<i32>() {
        list.value(i)
    } else if let Some(list) = column.as_list_opt::<i64>() {
        list.value(i)
    } else if let Some(list) = column.as_fixed_size_list_opt() {
        list.value(i)
    } else {
        bail!("expected a list of floats, found {}", column.data_type());
    };
    if let Some(f) = values.as_primitive_opt::<Float32Type>() {
        Ok(f.values().to_vec())
    } else if let Some(f) = values.as_primitive_opt::<Float64Type>() {
        Ok(f.values().iter().map(|x| *x as f32).collect())
    } else {
        bail!(
            "expected float32 or float64 values, found {}",
            values.data_type()
        )
    }
}

/// A scalar cell as JSON (`None` for types that are not payload material).
fn scalar(column: &ArrayRef, i: usize) -> Option<Value> {
    if let Some(s) = column.as_string_opt::<i32>() {
        return Some(Value::String(s.value(i).to_string()));
    }
    if let Some(s) = column.as_string_opt::<i64>() {
        return Some(Value::String(s.value(i).to_string()));
    }
    if let Some(n) = column.as_primitive_opt::<Int64Type>() {
        return Some(Value::from(n.value(i)));
    }
    if let Some(n) = column.as_primitive_opt::<Int32Type>() {
        return Some(Value::from(n.value(i)));
    }
    if let Some(n) = column.as_primitive_opt::<Float64Type>() {
        return serde_json::Number::from_f64(n.value(i)).map(Value::Number);
    }
    if let Some(n) = column.as_primitive_opt::<Float32Type>() {
        return serde_json::Number::from_f64(f64::from(n.value(i))).map(Value::Number);
    }
    if let Some(b) = column.as_boolean_opt() {
        return Some(Value::Bool(b.value(i)));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Float32Builder, ListBuilder};
    use arrow_array::{BooleanArray, Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;

    use super::*;

    #[test]
    fn rows_come_back_with_vectors_and_typed_payload() {
        let mut emb = ListBuilder::new(Float32Builder::new());
        for i in 0..3 {
            emb.values().append_slice(&[i as f32, 1.0, 2.0]);
            emb.append(true);
        }
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![7, 8, 9])) as ArrayRef),
            ("embedding", Arc::new(emb.finish()) as ArrayRef),
            (
                "brand",
                Arc::new(StringArray::from(vec![Some("acme"), None, Some("zed")])) as ArrayRef,
            ),
            (
                "live",
                Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
            ),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.parquet");
        let mut w =
            ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let (mut rows, n) = ParquetRows::open(&path).unwrap();
        assert_eq!(n, 3);
        let first = rows.next_row().unwrap().unwrap();
        assert_eq!(first.id, "7");
        assert_eq!(first.embedding, vec![0.0, 1.0, 2.0]);
        assert_eq!(first.payload["brand"], Value::String("acme".into()));
        assert_eq!(first.payload["live"], Value::Bool(true));
        let second = rows.next_row().unwrap().unwrap();
        assert!(!second.payload.contains_key("brand"), "nulls are left out");
        assert!(rows.next_row().unwrap().is_some());
        assert!(rows.next_row().unwrap().is_none());

        let bad = dir.path().join("bad.parquet");
        std::fs::write(&bad, b"not parquet").unwrap();
        assert!(ParquetRows::open(&bad).is_err());
    }
}
