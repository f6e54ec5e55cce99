// Skye console: the catalog from the admin API and the metrics, and a search box over the
// serving port's REST API. No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const settings = {
  caller: sessionStorage.getItem("skye.caller") || "console",
  token: sessionStorage.getItem("skye.token") || "",
  serving: sessionStorage.getItem("skye.serving") || "",
};

function headers() {
  const h = { "content-type": "application/json", "skye-caller-id": settings.caller };
  if (settings.token) h["skye-auth-token"] = settings.token;
  return h;
}

async function call(url, body) {
  const init = body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const r = await fetch(url, init);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: the metrics page */ }
  if (!r.ok) throw new Error((json && json.error) || `${r.status} ${text}`);
  return json === null ? text : json;
}

// Prometheus text → [{name, labels, value}] (the few lines the console reads).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const kv of (m[2] || "").matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const pick = (samples, name, match) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));

const cell = (text, cls) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
};

async function loadCatalog() {
  const status = $("catalog-status");
  const body = $("catalog").querySelector("tbody");
  try {
    const [{ entities }, metricsText] = await Promise.all([call("/api/v1/entities"), call("/metrics").catch(() => "")]);
    const samples = parseMetrics(metricsText);
    const lag = pick(samples, "skye_consumer_lag_records", {}).reduce((a, s) => a + s.value, 0);
    body.replaceChildren();
    const targets = [];
    for (const e of entities) {
      for (const modelName of e.models) {
        const model = await call(`/api/v1/models/${encodeURIComponent(e.entity)}/${encodeURIComponent(modelName)}`);
        const applied = pick(samples, "skye_lifecycle_job_events_applied", { entity: e.entity, model: modelName })[0];
        const expected = pick(samples, "skye_lifecycle_job_events_expected", { entity: e.entity, model: modelName })[0];
        const eta = pick(samples, "skye_lifecycle_job_eta_seconds", { entity: e.entity, model: modelName })[0];
        let job = "—";
        if (applied && expected) {
          job = `${applied.value} / ${expected.value}`;
          if (eta && eta.value > 0) job += ` (eta ${Math.round(eta.value)} s)`;
        }
        for (const [name, v] of Object.entries(model.variants || {})) {
          const collection = `${e.entity}/${modelName}/${name}@${v.vector_db_read_version}`;
          const points = pick(samples, "skye_collection_points", { collection })[0];
          const indexed = pick(samples, "skye_collection_indexed_points", { collection })[0];
          const recall = pick(samples, "skye_search_recall_ratio", { entity: e.entity, model: modelName, variant: name })[0];
          const tr = document.createElement("tr");
          tr.append(
            cell(e.entity), cell(modelName), cell(name),
            cell(v.variant_state, `state-${v.variant_state}`),
            cell(`${v.vector_db_read_version} / ${v.vector_db_write_version}`, "num"),
            cell(points ? `${points.value} (${indexed ? indexed.value : "?"})` : "—", "num"),
            cell(recall ? recall.value.toFixed(3) : "—", "num"),
            cell(job, "num"),
            cell(String(lag), "num"),
          );
          body.append(tr);
          targets.push([e.entity, modelName, name]);
        }
      }
    }
    const select = $("target");
    const previous = select.value;
    select.replaceChildren(...targets.map(([e, m, v]) => {
      const o = document.createElement("option");
      o.value = JSON.stringify([e, m, v]);
      o.textContent = `${e} / ${m} / ${v}`;
      return o;
    }));
    const wanted = params.get("entity") ? JSON.stringify([params.get("entity"), params.get("model"), params.get("variant")]) : previous;
    if (targets.some((t) => JSON.stringify(t) === wanted)) select.value = wanted;
    status.textContent = `${targets.length} variant(s) · updated ${new Date().toLocaleTimeString()}`;
    status.className = "muted";
    return targets.length;
  } catch (err) {
    status.textContent = `cannot load the catalog: ${err.message}`;
    status.className = "muted error";
    return 0;
  }
}

// "price LT 100; category IN shoes,bags" → proto3 JSON filters.
function parseFilters(text) {
  return text.split(";").map((s) => s.trim()).filter(Boolean).map((clause) => {
    const [field, op, ...rest] = clause.split(/\s+/);
    if (!field || !op) throw new Error(`filter '${clause}': write FIELD OP VALUES`);
    const values = rest.join(" ").split(",").map((v) => v.trim()).filter((v) => v !== "");
    return { field, op: op.toUpperCase(), values };
  });
}

async function search(event) {
  if (event) event.preventDefault();
  const status = $("search-status");
  const body = $("results").querySelector("tbody");
  body.replaceChildren();
  try {
    if (!$("target").value) throw new Error("no variant to search: register one first");
    const [entity, modelName, variant] = JSON.parse($("target").value);
    const query = $("query").value.trim();
    const request = { entity, modelName, variant, limit: Number($("limit").value) || 10 };
    if ($("mode").value === "vector") {
      request.embeddings = [{ embedding: JSON.parse(query) }];
    } else {
      if (!query) throw new Error("give a candidate id");
      request.candidateIds = [query];
    }
    const filters = parseFilters($("filters").value);
    if (filters.length) request.globalFilters = { filter: filters };
    const attributes = $("attributes").value.split(",").map((a) => a.trim()).filter(Boolean);
    if (attributes.length) request.attribute = attributes;
    const started = performance.now();
    const answer = await call(`${settings.serving}/api/v1/search/similar`, request);
    const candidates = (answer.responses && answer.responses[0] && answer.responses[0].candidates) || [];
    candidates.forEach((c, i) => {
      const tr = document.createElement("tr");
      tr.className = "result";
      const attrs = document.createElement("td");
      for (const [k, v] of Object.entries((c.meta && c.meta.attributesMap) || {}).sort()) {
        const span = document.createElement("span");
        span.className = "attr";
        span.textContent = `${k}: ${v}`;
        attrs.append(span);
      }
      tr.append(cell(String(i + 1), "num"), cell(c.id, "id"), cell((c.meta ? c.meta.score : 0).toFixed(4), "num"), attrs);
      body.append(tr);
    });
    status.textContent = `${candidates.length} result(s) in ${Math.round(performance.now() - started)} ms`;
    status.className = "muted";
    document.body.dataset.searched = String(candidates.length);
  } catch (err) {
    status.textContent = `search failed: ${err.message}`;
    status.className = "muted error";
    document.body.dataset.searched = "error";
  }
}

async function start() {
  try {
    const config = await call("/console/config.json");
    if (!settings.serving && config.serving_port) {
      settings.serving = `${location.protocol}//${location.hostname}:${config.serving_port}`;
    }
  } catch (_) { /* older server: keep the default */ }
  if (!settings.serving) settings.serving = `${location.protocol}//${location.hostname}:9090`;
  $("caller").value = settings.caller;
  $("token").value = settings.token;
  $("serving").value = settings.serving;
  $("auth").addEventListener("submit", (e) => {
    e.preventDefault();
    settings.caller = $("caller").value;
    settings.token = $("token").value;
    settings.serving = $("serving").value.replace(/\/$/, "");
    for (const k of ["caller", "token", "serving"]) sessionStorage.setItem(`skye.${k}`, settings[k]);
    loadCatalog();
  });
  $("search").addEventListener("submit", search);
  $("refresh").addEventListener("click", loadCatalog);
  for (const [field, param] of [["query", "q"], ["mode", "by"], ["limit", "limit"], ["filters", "filters"], ["attributes", "attributes"]]) {
    if (params.has(param)) $(field).value = params.get(param);
  }
  await loadCatalog();
  // A link can carry a search (?entity=&model=&variant=&q=…&run=1): it runs as if submitted.
  if (params.get("run") === "1") $("run").click();
  setInterval(loadCatalog, 10000);
}

start();
