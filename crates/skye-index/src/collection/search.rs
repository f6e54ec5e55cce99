//! Searches: the planner (graph walk, filtered walk, scoring the matches, exact scan) and the
//! rescoring of approximate candidates.

use super::*;

/// Candidates rescored with float vectors per wanted result (SQ8 traversal).
const RESCORE_FACTOR: usize = 4;
/// Least candidates rescored.
const RESCORE_MIN: usize = 40;

impl Collection {
    /// The nearest points to `req.vector`.
    pub fn search(&self, req: &SearchRequest<'_>) -> Result<Vec<Hit>, IndexError> {
        self.search_explained(req).map(|(hits, _)| hits)
    }

    /// [`Collection::search`], and the path the planner took.
    pub fn search_explained(
        &self,
        req: &SearchRequest<'_>,
    ) -> Result<(Vec<Hit>, Plan), IndexError> {
        let config = self.config.read().clone();
        if req.vector.len() != config.dim {
            return Err(IndexError::QueryDimension {
                expected: config.dim,
                got: req.vector.len(),
            });
        }
        if !req.vector.iter().all(|x| x.is_finite()) {
            return Err(IndexError::NonFiniteQuery);
        }
        let mut q = req.vector.to_vec();
        if config.metric.normalizes() {
            normalize(&mut q);
        }
        let wanted = req.offset.saturating_add(req.limit);
        if req.limit == 0 {
            return Ok((Vec::new(), Plan::empty()));
        }
        let inner = self.inner.read();
        let excluded: Vec<u32> = req
            .exclude
            .iter()
            .filter_map(|id| inner.ids.slot(id))
            .collect();
        let compiled = req
            .filter
            .filter(|f| !f.is_empty())
            .map(|f| CompiledFilter::compile(f, &inner.fields));
        // The payload indexes answer the filter as a set of candidates (exactly the matches,
        // or a superset to check point by point).
        let selection = compiled.as_ref().map(|f| inner.index.select(f));
        let candidates = selection.as_ref().and_then(|s| s.ids.as_ref());
        let check = selection.as_ref().is_some_and(|s| !s.exact);
        let linked = inner.linked.load(Ordering::Acquire);
        // Rows a search may return: all of them, or only the linked ones.
        let n = if req.indexed_only && inner.live > config.exact_below {
            linked
        } else {
            inner.ids.len()
        };
        let admit = Stoppable {
            admit: |id: u32| {
                (id as usize) < n
                    && !inner.deleted[id as usize]
                    && !excluded.contains(&id)
                    && candidates.is_none_or(|b| b.contains(id))
                    && (!check
                        || compiled
                            .as_ref()
                            .is_none_or(|f| f.matches(inner.payloads.view(id as usize))))
            },
            stop: req.stop,
        };
        let matches = candidates.map(|b| b.len() as usize);
        let fraction = matches.map_or(1.0, |m| m as f64 / inner.live.max(1) as f64);
        let base_ef = req
            .ef
            .unwrap_or_else(|| default_ef(config.ef, inner.live, wanted))
            .max(wanted);
        // The walk keeps `keep` admitted points and tests about 1/fraction nodes for each.
        let keep = filtered_keep(base_ef, fraction, wanted);
        let walk_steps = (keep as f64 / fraction.max(1e-9)).min(MAX_POINTS as f64) as usize;
        // A graph step (random reads, heap work) costs about as much as scanning this many rows;
        // below that, scanning the rows is both faster and exact.
        // Scanning the matches reads scattered rows: fewer of them per graph step than a
        // sequential scan of everything.
        let rows_per_step = match matches {
            Some(_) => config.exact_rows_per_beam / MATCHES_SCAN_PENALTY,
            None => config.exact_rows_per_beam,
        };
        let budget = walk_steps.saturating_mul(rows_per_step);
        let scanned = matches.unwrap_or(inner.live);
        // Fewer matches than the walk would visit anyway: scoring them all is cheaper and exact.
        let scan_is_cheaper = matches.is_some_and(|m| m <= walk_steps)
            || (config.exact_rows_per_beam > 0 && scanned <= budget);
        let mut path = if matches == Some(0) {
            SearchPath::ExactMatches
        } else if req.exact || inner.live <= config.exact_below || linked == 0 || scan_is_cheaper {
            match candidates {
                Some(_) => SearchPath::ExactMatches,
                None => SearchPath::Exact,
            }
        } else if compiled.is_some() {
            SearchPath::GraphFiltered
        } else {
            SearchPath::Graph
        };
        let planned = path;
        let found: Vec<Scored> = match (planned, candidates) {
            (SearchPath::ExactMatches, Some(ids)) => {
                // The candidates are live points already: no bitmap probe per row.
                let among = Stoppable {
                    admit: |id: u32| {
                        (id as usize) < n
                            && !excluded.contains(&id)
                            && (!check
                                || compiled
                                    .as_ref()
                                    .is_none_or(|f| f.matches(inner.payloads.view(id as usize))))
                    },
                    stop: req.stop,
                };
                self.score_matches(&inner, &config, &q, wanted, ids, &among)
            }
            (SearchPath::Exact | SearchPath::ExactMatches, _) => {
                flat::search(&inner.vectors, self.dist, &q, wanted, 0..n, &admit)
            }
            (SearchPath::Graph | SearchPath::GraphFiltered, _) => {
                // A walk that costs more than scoring the matches would is given up for that.
                let plan = WalkPlan {
                    keep,
                    full: base_ef,
                    steps: match matches {
                        Some(m) => (m / rows_per_step.max(1)).max(walk_steps),
                        None => base_ef.saturating_mul(MAX_STEPS_PER_KEPT),
                    },
                    fraction,
                };
                let (mut hits, gave_up) = self.walk(&inner, &config, &q, wanted, plan, &admit);
                if gave_up && !admit.stopped() {
                    path = SearchPath::ExactMatches;
                    hits = match candidates {
                        Some(ids) => self.score_matches(&inner, &config, &q, wanted, ids, &admit),
                        None => flat::search(&inner.vectors, self.dist, &q, wanted, 0..n, &admit),
                    };
                }
                if linked < n {
                    hits.extend(flat::search(
                        &inner.vectors,
                        self.dist,
                        &q,
                        wanted,
                        linked..n,
                        &admit,
                    ));
                    hits.sort_unstable_by(|a, b| a.dist.total_cmp(&b.dist).then(a.id.cmp(&b.id)));
                    hits.dedup_by_key(|s| s.id);
                }
                hits
            }
        };
        if admit.stopped() {
            return Err(IndexError::Cancelled);
        }
        let within = |s: &Scored| {
            req.score_threshold.is_none_or(|t| {
                let score = config.metric.score(s.dist);
                if config.metric.higher_is_better() {
                    score >= t
                } else {
                    score <= t
                }
            })
        };
        let hits = found
            .into_iter()
            .filter(within)
            .skip(req.offset)
            .take(req.limit)
            .map(|s| inner.hit(s, config.metric, req.with_payload))
            .collect();
        Ok((hits, Plan { path, matches }))
    }
}

/// The `wanted` nearest of `found` (ranked approximately, nearest first) by exact distance. Only
/// the head of an approximate ranking can hold the true top `wanted`; rescoring every candidate
/// would cost as many random reads of float rows.
fn rescore(mut found: Vec<Scored>, exact: &Exact<'_>, wanted: usize) -> Vec<Scored> {
    found.truncate(wanted.saturating_mul(RESCORE_FACTOR).max(RESCORE_MIN));
    found.iter().for_each(|s| exact.prefetch(s.id));
    found.iter_mut().for_each(|s| s.dist = exact.dist(s.id));
    found.sort_unstable();
    found.truncate(wanted);
    found
}

/// SQ8 distances for rows that have codes, float distances for the newer rows that do not yet.
struct Mixed<'a> {
    codes: Quantized<'a>,
    exact: Exact<'a>,
    coded: usize,
}

impl QueryDist for Mixed<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        if (id as usize) < self.coded {
            self.codes.dist(id)
        } else {
            self.exact.dist(id)
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        if (id as usize) < self.coded {
            self.codes.prefetch(id);
        } else {
            self.exact.prefetch(id);
        }
    }
}

/// How a search was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPath {
    /// Every live point scanned (small collection, exact request, nothing linked yet).
    Exact,
    /// Only the points the payload indexes selected were scored.
    ExactMatches,
    /// The graph, with the filter admitting points as it goes (a bitmap probe).
    GraphFiltered,
    /// The graph, unfiltered.
    Graph,
}

impl SearchPath {
    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            SearchPath::Exact => "exact",
            SearchPath::ExactMatches => "exact_matches",
            SearchPath::GraphFiltered => "graph_filtered",
            SearchPath::Graph => "graph",
        }
    }
}

/// The planner's choice for one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub path: SearchPath,
    /// Points the payload indexes selected (exactly the matches unless the filter has
    /// conditions they cannot answer alone); `None` without a filter.
    pub matches: Option<usize>,
}

impl Plan {
    fn empty() -> Self {
        Plan {
            path: SearchPath::Exact,
            matches: None,
        }
    }
}

/// The beam width of a search that names none: `base` for up to [`EF_SCALE_FROM`] points, then
/// wider by `base` per tenfold growth (a graph's recall at a fixed beam falls as it grows: at
/// `base` 64, GloVe-50 gives 0.92 at 200k points), and at least twice the results wanted.
pub fn default_ef(base: usize, live: usize, wanted: usize) -> usize {
    let growth = (live.max(EF_SCALE_FROM) as f64 / EF_SCALE_FROM as f64).log10();
    let scaled = (base as f64 * (1.0 + growth)).ceil() as usize;
    scaled
        .max(wanted.saturating_mul(2))
        .min(MAX_DEFAULT_EF.max(wanted))
}

/// Admitted points a filtered walk collects: `ef` × √fraction, at least the rescored head of
/// the results (and never more than `ef`).
fn filtered_keep(ef: usize, fraction: f64, wanted: usize) -> usize {
    let floor = wanted
        .saturating_mul(RESCORE_FACTOR)
        .max(RESCORE_MIN)
        .min(ef);
    ((ef as f64 * fraction.clamp(0.0, 1.0).sqrt()).ceil() as usize).clamp(floor, ef)
}

/// Points up to which the default beam stays at its base.
const EF_SCALE_FROM: usize = 10_000;
/// Widest default beam (a larger `limit` still gets at least `limit`).
const MAX_DEFAULT_EF: usize = 1_024;

/// How much dearer a row of the matches is to score than a row of a sequential scan: they are
/// scattered (scored on SQ8 codes, prefetched; measured at 128-d on 1M points: ~100 ns a row,
/// head rescoring included, where a graph step of a filtered walk costs ~1 µs).
const MATCHES_SCAN_PENALTY: usize = 8;

/// A narrowed filtered walk is redone at the full beam when, among the first [`NEAR_TESTS`]
/// nodes it tested, it saw admitted ones at less than this share of the filter's overall rate
/// (low enough that chance alone rarely gets there: at a 4 % filter, 2 admitted where 10 are
/// expected happens to 0.3 % of queries).
const LOCAL_RATE_FLOOR: f64 = 0.25;
/// Admission tests that tell how dense the filter is around the query.
const NEAR_TESTS: usize = 256;

/// Graph steps per kept point a walk may take when the indexes did not count the matches (a
/// filter only a scan can answer) before it gives up for the exact path.
const MAX_STEPS_PER_KEPT: usize = 32;

/// An admission test that also ends a walk after `max_steps` expansions, and says so.
struct Capped<'a, A> {
    inner: &'a A,
    checks_left: std::cell::Cell<usize>,
    gave_up: std::cell::Cell<bool>,
    /// Admission tests among the first [`NEAR_TESTS`] (the nodes nearest the query), and
    /// those passed.
    tested: std::cell::Cell<usize>,
    passed: std::cell::Cell<usize>,
}

impl<'a, A: Admit> Capped<'a, A> {
    fn new(inner: &'a A, max_steps: usize) -> Self {
        Capped {
            inner,
            checks_left: std::cell::Cell::new(max_steps / crate::hnsw::STOP_CHECK_EVERY),
            gave_up: std::cell::Cell::new(false),
            tested: std::cell::Cell::new(0),
            passed: std::cell::Cell::new(0),
        }
    }

    fn gave_up(&self) -> bool {
        self.gave_up.get()
    }

    /// The share of the first nodes the walk tested that the filter admitted.
    fn admitted_rate(&self) -> f64 {
        self.passed.get() as f64 / self.tested.get().max(1) as f64
    }
}

impl<A: Admit> Admit for Capped<'_, A> {
    #[inline]
    fn admit(&self, id: u32) -> bool {
        let ok = self.inner.admit(id);
        let tested = self.tested.get();
        if tested < NEAR_TESTS {
            self.tested.set(tested + 1);
            self.passed.set(self.passed.get() + usize::from(ok));
        }
        ok
    }

    /// Called every [`crate::hnsw::STOP_CHECK_EVERY`] expansions.
    fn stopped(&self) -> bool {
        if self.inner.stopped() {
            return true;
        }
        match self.checks_left.get() {
            0 => {
                self.gave_up.set(true);
                true
            }
            n => {
                self.checks_left.set(n - 1);
                false
            }
        }
    }
}

/// A graph search as planned: admitted points kept (`full` when a narrow walk is redone), the
/// expansions allowed, and the share of points the filter admits overall.
#[derive(Debug, Clone, Copy)]
struct WalkPlan {
    keep: usize,
    full: usize,
    steps: usize,
    fraction: f64,
}

/// Width of a graph search: `explore` nodes steer it, the `keep` best admitted are returned.
#[derive(Debug, Clone, Copy)]
struct Beam {
    explore: usize,
    keep: usize,
}

impl Collection {
    /// Graph search: on SQ8 codes with exact rescoring when codes exist, else exact.
    #[allow(
        clippy::too_many_arguments,
        reason = "one private call site; a struct would only rename the list"
    )]
    fn graph_search<A: Admit>(
        &self,
        inner: &Inner,
        config: &CollectionConfig,
        space: Space<'_>,
        q: &[f32],
        wanted: usize,
        beam: Beam,
        admit: &A,
    ) -> Vec<Scored> {
        let keep = beam.keep.max(wanted);
        if config.quantization {
            let quant = inner.quant.read();
            if let Some(state) = quant.as_ref()
                && let Some(query) = state.quantizer.query(q, config.metric)
            {
                let qd = state.walker(&query, &self.qkernels);
                let found = inner.graph.search_filtered(&qd, beam.explore, keep, admit);
                return rescore(found, &Exact { q, space }, wanted);
            }
        }
        let mut found = inner
            .graph
            .search_filtered(&Exact { q, space }, beam.explore, keep, admit);
        found.truncate(wanted);
        found
    }

    /// The graph search of `plan`; `true` when it gave up (the caller scores the matches).
    ///
    /// Filtered too, the walk goes on until it holds `keep` admitted points, wherever they are
    /// (a filter that rejects the query's whole neighbourhood sends it outward instead of
    /// stopping among rejected points). It tests every node near the query to find them
    /// (1/fraction per admitted one), so it needs fewer of them than an unfiltered walk needs
    /// nodes for the same recall.
    fn walk<A: Admit>(
        &self,
        inner: &Inner,
        config: &CollectionConfig,
        q: &[f32],
        wanted: usize,
        plan: WalkPlan,
        admit: &A,
    ) -> (Vec<Scored>, bool) {
        let space = Space {
            vectors: &inner.vectors,
            dist: self.dist,
        };
        let run = |keep: usize| {
            let capped = Capped::new(admit, plan.steps);
            let beam = Beam {
                explore: keep,
                keep,
            };
            let hits = self.graph_search(inner, config, space, q, wanted, beam, &capped);
            (hits, capped)
        };
        let (mut hits, mut capped) = run(plan.keep);
        // Far fewer admitted near the query than overall: the filter keeps points away from
        // it, and a short walk may have settled in the wrong region. Walk again at full width.
        if plan.keep < plan.full
            && !capped.gave_up()
            && capped.admitted_rate() < plan.fraction * LOCAL_RATE_FLOOR
        {
            (hits, capped) = run(plan.full);
        }
        (hits, capped.gave_up())
    }

    /// The `wanted` nearest of the points a filter selected: ranked on SQ8 codes where rows
    /// have them (a quarter of the bytes to fetch per scattered row), then the head rescored on
    /// the float vectors.
    fn score_matches<A: Admit>(
        &self,
        inner: &Inner,
        config: &CollectionConfig,
        q: &[f32],
        wanted: usize,
        ids: &roaring::RoaringBitmap,
        admit: &A,
    ) -> Vec<Scored> {
        let exact = Exact {
            q,
            space: Space {
                vectors: &inner.vectors,
                dist: self.dist,
            },
        };
        if config.quantization {
            let quant = inner.quant.read();
            if let Some(state) = quant.as_ref()
                && let Some(query) = state.quantizer.query(q, config.metric)
            {
                let mixed = Mixed {
                    codes: state.walker(&query, &self.qkernels),
                    exact,
                    coded: state.rows,
                };
                let head = wanted.saturating_mul(RESCORE_FACTOR).max(RESCORE_MIN);
                return rescore(flat::search_ids(&mixed, head, ids, admit), &exact, wanted);
            }
        }
        flat::search_ids(&exact, wanted, ids, admit)
    }
}

impl Inner {
    fn hit(&self, s: Scored, metric: Metric, with_payload: &[String]) -> Hit {
        let payload = with_payload
            .iter()
            .filter_map(|name| {
                let f = self.fields.get(name)?;
                let v = self.payloads.view(s.id as usize).get(f)?;
                Some((name.clone(), v.to_value()))
            })
            .collect();
        Hit {
            id: self.ids.name(s.id).to_string(),
            score: metric.score(s.dist),
            payload,
        }
    }
}
