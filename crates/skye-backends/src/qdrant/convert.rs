//! Translation between Skye's types and Qdrant's: point ids, payload values, filters, search
//! requests and their answers.

use super::*;

/// The Qdrant point id of a candidate id.
pub fn point_id(id: &str) -> PointId {
    match id.parse::<u64>() {
        Ok(n) if n.to_string() == id => PointId::from(n),
        _ => PointId::from(uuid_for(id)),
    }
}

/// A deterministic UUID-shaped id for a non-numeric candidate id (two FNV-1a 64 hashes).
pub(super) fn uuid_for(id: &str) -> String {
    let a = fnv1a64(id.as_bytes());
    let mut b = Fnv1a64::with_offset(0x8422_2325_cbf2_9ce4);
    b.write(id.as_bytes());
    let b = b.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Engine-neutral payload value → Qdrant value.
pub fn to_value(v: &PayloadValue) -> Value {
    match v {
        PayloadValue::Keyword(s) => Value::from(s.clone()),
        PayloadValue::Integer(i) => Value::from(*i),
        PayloadValue::Float(f) => Value::from(*f),
        PayloadValue::Bool(b) => Value::from(*b),
        PayloadValue::Geo(lat, lon) => Value::from(GeoPoint {
            lat: *lat,
            lon: *lon,
        }),
        PayloadValue::List(items) => Value {
            kind: Some(Kind::ListValue(ListValue {
                values: items.iter().map(to_value).collect(),
            })),
        },
    }
}

/// A Qdrant payload value as the text the API returns in `attributesMap`.
pub fn value_text(v: &Value) -> String {
    match &v.kind {
        Some(Kind::StringValue(s)) => s.clone(),
        Some(Kind::IntegerValue(i)) => i.to_string(),
        Some(Kind::DoubleValue(d)) => d.to_string(),
        Some(Kind::BoolValue(b)) => b.to_string(),
        // As the embedded engine renders a list: JSON-like, texts quoted.
        Some(Kind::ListValue(l)) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|v| match &v.kind {
                    Some(Kind::StringValue(s)) => {
                        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                    _ => value_text(v),
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        Some(Kind::StructValue(s)) => {
            let lat = s.fields.get("lat").map(value_text).unwrap_or_default();
            let lon = s.fields.get("lon").map(value_text).unwrap_or_default();
            format!("{lat},{lon}")
        }
        Some(Kind::NullValue(_)) | None => String::new(),
    }
}

pub(super) fn condition(c: &Condition) -> QCondition {
    match c {
        Condition::Match { field, any } => {
            let keywords: Vec<String> = any
                .iter()
                .filter_map(|v| match v {
                    PayloadValue::Keyword(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let integers: Vec<i64> = any
                .iter()
                .filter_map(|v| match v {
                    PayloadValue::Integer(i) => Some(*i),
                    _ => None,
                })
                .collect();
            let bools: Vec<bool> = any
                .iter()
                .filter_map(|v| match v {
                    PayloadValue::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect();
            if !keywords.is_empty() {
                QCondition::matches(
                    field.as_str(),
                    MatchValue::Keywords(qdrant::RepeatedStrings { strings: keywords }),
                )
            } else if !integers.is_empty() {
                QCondition::matches(field.as_str(), integers)
            } else if let [b] = bools[..] {
                QCondition::matches(field.as_str(), b)
            } else {
                // Both booleans (or floats): any value of the field matches; floats are
                // compared as a closed range around each value.
                let should: Vec<QCondition> = any
                    .iter()
                    .map(|v| match v {
                        PayloadValue::Bool(b) => QCondition::matches(field.as_str(), *b),
                        PayloadValue::Float(f) => QCondition::range(
                            field.as_str(),
                            Range {
                                gte: Some(*f),
                                lte: Some(*f),
                                ..Default::default()
                            },
                        ),
                        other => QCondition::matches(field.as_str(), format!("{other:?}")),
                    })
                    .collect();
                Filter::should(should).into()
            }
        }
        Condition::Exists { field } => {
            Filter::must_not([QCondition::is_empty(field.as_str())]).into()
        }
        Condition::Text { field, query } => {
            QCondition::matches_text(field.as_str(), query.as_str())
        }
        Condition::Range {
            field,
            gt,
            gte,
            lt,
            lte,
        } => QCondition::range(
            field.as_str(),
            Range {
                gt: *gt,
                gte: *gte,
                lt: *lt,
                lte: *lte,
            },
        ),
        Condition::GeoRadius {
            field,
            lat,
            lon,
            radius_m,
        } => QCondition::geo_radius(
            field.as_str(),
            GeoRadius {
                center: Some(GeoPoint {
                    lat: *lat,
                    lon: *lon,
                }),
                radius: *radius_m as f32,
            },
        ),
    }
}

/// A search filter plus excluded ids → one Qdrant filter (`None` when empty).
pub fn filter(f: Option<&SearchFilter>, exclude: &[String]) -> Option<Filter> {
    let mut out = Filter::default();
    if let Some(f) = f {
        out.must = f.must.iter().map(condition).collect();
        out.must_not = f.must_not.iter().map(condition).collect();
    }
    if !exclude.is_empty() {
        out.must_not.push(QCondition::has_id(
            exclude.iter().map(|id| point_id(id)).collect::<Vec<_>>(),
        ));
    }
    (!out.must.is_empty() || !out.must_not.is_empty()).then_some(out)
}

/// The payload index of a field of the variant's schema, as the original creates them from
/// `field_schema`. Datetimes are indexed as integers: Skye stores them as Unix seconds. Text
/// gets Qdrant's `word` tokenizer with lower-casing, which is what SEARCH means on both engines.
pub(super) fn field_index(
    collection: &str,
    field: &str,
    schema: FieldSchema,
) -> CreateFieldIndexCollectionBuilder {
    let kind = match schema {
        FieldSchema::Keyword => FieldType::Keyword,
        FieldSchema::Integer | FieldSchema::Datetime => FieldType::Integer,
        FieldSchema::Float => FieldType::Float,
        FieldSchema::Boolean => FieldType::Bool,
        FieldSchema::Geo => FieldType::Geo,
        FieldSchema::Text => FieldType::Text,
    };
    let index = CreateFieldIndexCollectionBuilder::new(collection, field, kind).wait(true);
    match schema {
        FieldSchema::Text => index
            .field_index_params(TextIndexParamsBuilder::new(TokenizerType::Word).lowercase(true)),
        _ => index,
    }
}

pub(super) fn distance(d: DistanceFunction) -> Distance {
    match d {
        DistanceFunction::Dot => Distance::Dot,
        DistanceFunction::Cosine => Distance::Cosine,
        DistanceFunction::Euclidean => Distance::Euclid,
        DistanceFunction::Manhattan => Distance::Manhattan,
    }
}

pub(super) fn candidate_id(id: Option<PointId>, payload: &HashMap<String, Value>) -> String {
    if let Some(Value {
        kind: Some(Kind::StringValue(s)),
    }) = payload.get(ID_FIELD)
    {
        return s.clone();
    }
    match id.and_then(|p| p.point_id_options) {
        Some(PointIdOptions::Num(n)) => n.to_string(),
        Some(PointIdOptions::Uuid(u)) => u,
        None => String::new(),
    }
}

pub(super) fn payload_of(p: &VectorPoint) -> Payload {
    let mut payload = Payload::new();
    for (k, v) in &p.payload {
        payload.insert(k.as_str(), to_value(v));
    }
    if !matches!(
        point_id(&p.id).point_id_options,
        Some(PointIdOptions::Num(_))
    ) {
        payload.insert(ID_FIELD, p.id.clone());
    }
    payload
}

/// One query as Qdrant's search. Payload is asked for only when the query wants attributes
/// (then with [`ID_FIELD`]): reading it costs Qdrant a payload fetch per hit, and a numeric id
/// needs none; the ids of UUID points found without it are filled by [`QdrantVectorStore::fill_ids`].
pub(super) fn search_request(collection: &str, q: SearchQuery) -> qdrant::SearchPoints {
    let mut params = SearchParamsBuilder::default()
        .exact(q.exact)
        .indexed_only(q.indexed_only);
    if let Some(ef) = q.ef {
        params = params.hnsw_ef(ef as u64);
    }
    let mut s = SearchPointsBuilder::new(collection, q.vector, q.limit as u64)
        .offset(q.offset as u64)
        .params(params);
    if !q.with_payload.is_empty() {
        let mut fields = q.with_payload;
        fields.push(ID_FIELD.to_string());
        s = s.with_payload(qdrant::with_payload_selector::SelectorOptions::Include(
            qdrant::PayloadIncludeSelector { fields },
        ));
    }
    if let Some(f) = filter(q.filter.as_ref(), &q.exclude) {
        s = s.filter(f);
    }
    if let Some(t) = q.score_threshold {
        s = s.score_threshold(t);
    }
    s.build()
}

/// A hit as the contract's point, with the `wanted` payload fields as text.
pub(super) fn scored(hit: qdrant::ScoredPoint, wanted: &[String]) -> ScoredPoint {
    ScoredPoint {
        id: candidate_id(hit.id.clone(), &hit.payload),
        score: hit.score,
        payload: wanted
            .iter()
            .filter_map(|k| hit.payload.get(k).map(|v| (k.clone(), value_text(v))))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The UUID of a point id, if it is one.
pub(super) fn uuid_of(id: Option<&PointId>) -> Option<&str> {
    match id?.point_id_options.as_ref()? {
        PointIdOptions::Uuid(u) => Some(u),
        PointIdOptions::Num(_) => None,
    }
}
