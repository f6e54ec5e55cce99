//! Reading 2-D NumPy `.npy` arrays (little-endian, C order): vectors and id matrices.

/// A 2-D `.npy` array: dtype, rows, columns and the raw little-endian data.
fn read_raw(path: &str) -> Result<(String, usize, usize, Vec<u8>), String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 12 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{path}: not a .npy file"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + header_len)
            .ok_or(format!("{path}: short header"))?,
    )
    .map_err(|_| format!("{path}: bad header"))?
    .to_string();
    if header.contains("'fortran_order': True") {
        return Err(format!("{path}: fortran order is not supported"));
    }
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or(format!("{path}: no descr"))?;
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or(format!("{path}: no shape"))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap_or(0))
        .collect();
    let (rows, cols) = match shape[..] {
        [r, c] => (r, c),
        [r] => (r, 1),
        _ => return Err(format!("{path}: expected a 2-D array")),
    };
    let descr = descr.to_string();
    bytes.drain(..start + header_len);
    Ok((descr, rows, cols, bytes))
}

/// A float32 matrix, without widening (base sets are large).
pub fn read_f32(path: &str) -> Result<(Vec<f32>, usize, usize), String> {
    let (descr, rows, cols, data) = read_raw(path)?;
    if descr != "<f4" {
        return Err(format!("{path}: expected float32 (<f4), got {descr}"));
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if values.len() != rows * cols {
        return Err(format!(
            "{path}: {} values for shape {rows}x{cols}",
            values.len()
        ));
    }
    Ok((values, rows, cols))
}

/// An integer matrix (ground-truth neighbour indices).
pub fn read_ids(path: &str) -> Result<(Vec<usize>, usize, usize), String> {
    let (descr, rows, cols, data) = read_raw(path)?;
    let values: Vec<usize> = match descr.as_str() {
        "<i4" => data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect(),
        "<i8" => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
            .collect(),
        other => return Err(format!("{path}: expected int32/int64 ids, got {other}")),
    };
    if values.len() != rows * cols {
        return Err(format!(
            "{path}: {} values for shape {rows}x{cols}",
            values.len()
        ));
    }
    Ok((values, rows, cols))
}
