"""Admin helpers over Skye's HTTP APIs: register a catalog's model, run a job and wait for it.

A job is what a Spark or notebook pipeline does for Skye: ask admin for a job ticket (the
collection versions to write), send one embedding event per item to the consumers' ingest API
(spread over the job's partitions), one EOF per partition, then wait until every variant of the
job is COMPLETED (indexed and serving).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .client import CALLER_ID_HEADER, TOKEN_HEADER, _rows

EMBEDDING_TOPIC = "skye.embedding"


class AdminError(Exception):
    """An admin or ingest call that failed: the HTTP status and Skye's message."""

    def __init__(self, status: int, message: str, url: str):
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


class SkyeAdmin:
    def __init__(
        self,
        admin_url: str = "http://localhost:8080",
        consumers_url: str = "http://localhost:8081",
        caller_id: str = "python",
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
    ):
        self.admin_url = admin_url.rstrip("/")
        self.consumers_url = consumers_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"content-type": "application/json", CALLER_ID_HEADER: caller_id}
        if token is not None:
            self._headers[TOKEN_HEADER] = token

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, method: str, url: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise AdminError(e.code, message, url) from None
        return json.loads(text) if text else None

    def _admin(self, path: str, body: Any = None) -> Any:
        method = "GET" if body is None else "POST"
        return self._send(method, f"{self.admin_url}/api/v1/{path}", body)

    # -- registration -----------------------------------------------------------------------

    def register_store(self, conf_id: int = 1, embeddings_table: str = "embeddings",
                       aggregator_table: str = "aggregator") -> Any:
        return self._admin("model/register-store", {
            "conf_id": conf_id, "embeddings_table": embeddings_table,
            "aggregator_table": aggregator_table})

    def register_entity(self, entity: str, store_id: str = "1") -> Any:
        return self._admin("model/register-entity", {"entity": entity, "store_id": store_id})

    def register_model(self, entity: str, model: str, dimension: int, *,
                       distance: str = "COSINE", partitions: int = 1,
                       model_type: str = "RESET", embedding_store_enabled: bool = True,
                       **extra: Any) -> Any:
        body = {"entity": entity, "model": model, "model_type": model_type,
                "embedding_store_enabled": embedding_store_enabled,
                "number_of_partitions": partitions,
                "model_config": {"distance_function": distance, "vector_dimension": dimension}}
        body.update(extra)
        return self._admin("model/register-model", body)

    def register_variant(self, entity: str, model: str, variant: str, *,
                         payload: Optional[Mapping[str, str]] = None,
                         filter: Optional[Sequence[Mapping[str, str]]] = None,
                         **extra: Any) -> Any:
        """`payload` maps each field to its schema (keyword, integer, float, bool, datetime,
        geo); `filter` is the variant's ingestion filter on aggregator columns."""
        body: Dict[str, Any] = {"entity": entity, "model": model, "variant": variant}
        if payload:
            body["vector_db_config"] = {
                "payload": {k: {"field_schema": v} for k, v in payload.items()}}
        if filter is not None:
            body["filter"] = list(filter)
        body.update(extra)
        return self._admin("model/register-variant", body)

    def variant(self, entity: str, model: str, variant: str) -> Dict[str, Any]:
        return self._admin(f"models/{entity}/{model}/variants/{variant}")

    # -- jobs -------------------------------------------------------------------------------

    def start_job(self, entity: str, model: str, variants: Optional[Sequence[str]] = None
                  ) -> Dict[str, Any]:
        """The job ticket (versions to write, partitions, topic) for the listed variants, or
        for every enabled variant of the model."""
        if variants:
            ticket = self._admin("qdrant/process-multi-variant",
                                 {"entity": entity, "model": model, "variants": list(variants)})
        else:
            ticket = self._admin("qdrant/process-model", {"entity": entity, "model": model})
        if not ticket:
            raise AdminError(400, f"no enabled variant to ingest into for model {model!r}",
                             self.admin_url)
        return ticket

    def ingest(self, entity: str, model: str, ids: Sequence[Any], vectors: Any, *,
               payloads: Optional[Sequence[Mapping[str, Any]]] = None,
               variants: Optional[Sequence[str]] = None, batch: int = 500,
               progress: bool = True, wait: bool = True, timeout: float = 600.0) -> int:
        """Runs a whole job of `ids` with `vectors` (an array of rows or a list of lists) and
        optional `payloads` (one mapping per item); returns the number of items sent."""
        rows = _rows(vectors)
        if len(rows) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(rows)} vectors")
        if payloads is not None and len(payloads) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(payloads)} payloads")
        ticket = self.start_job(entity, model, variants)
        versions = ticket.get("variants") or {}
        partitions = max(1, int(ticket.get("number_of_partitions") or 1))
        topic = ticket.get("topic_name") or EMBEDDING_TOPIC
        url = f"{self.consumers_url}/api/v1/ingest/{topic}"
        index = {v: True for v in versions}
        bar = _Progress(len(rows), enabled=progress)
        events: List[Dict[str, Any]] = []
        for i, (item, vector) in enumerate(zip(ids, rows)):
            payload = {k: v if isinstance(v, str) else json.dumps(v)
                       for k, v in (payloads[i] if payloads is not None else {}).items()}
            events.append({
                "entity": entity, "model_name": model, "candidate_id": str(item),
                "environment": "python", "partition": str(i % partitions),
                "embedding_store_version": ticket.get("embedding_store_version"),
                "index_space": {"embedding": vector, "variants_version_map": versions,
                                "variants_index_map": index, "operation": "ADD",
                                "payload": payload}})
            if len(events) >= batch:
                self._send("POST", url, events)
                bar.advance(len(events))
                events = []
        if events:
            self._send("POST", url, events)
            bar.advance(len(events))
        bar.done()
        eofs = [{"entity": entity, "model_name": model, "candidate_id": "EOF",
                 "embedding_store_version": ticket.get("embedding_store_version"),
                 "partition": str(p), "index_space": {"variants_version_map": versions}}
                for p in range(partitions)]
        self._send("POST", url, eofs)
        if wait:
            self.wait_completed(entity, model, list(versions), timeout=timeout)
        return len(rows)

    def ingest_frame(self, entity: str, model: str, frame: Any, *, id_column: str = "id",
                     vector_column: str = "embedding",
                     payload_columns: Optional[Iterable[str]] = None, **kwargs: Any) -> int:
        """`ingest` from a pandas DataFrame (or any object with `to_dict("records")`, or a
        list of dicts): one row per item, its vector in `vector_column`."""
        records = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
        columns = list(payload_columns) if payload_columns is not None else [
            c for c in (records[0] if records else {}) if c not in (id_column, vector_column)]
        return self.ingest(
            entity, model, [r[id_column] for r in records], [r[vector_column] for r in records],
            payloads=[{c: r[c] for c in columns if r.get(c) is not None} for r in records],
            **kwargs)

    def ingest_parquet(self, entity: str, model: str, path: str, **kwargs: Any) -> int:
        """`ingest_frame` from a Parquet file (needs pyarrow: pip install skye-client[parquet])."""
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("ingest_parquet needs pyarrow: pip install 'skye-client[parquet]'") from e
        return self.ingest_frame(entity, model, pq.read_table(path).to_pylist(), **kwargs)

    def wait_completed(self, entity: str, model: str, variants: Sequence[str], *,
                       timeout: float = 600.0, poll: float = 0.2) -> None:
        """Waits until every variant is COMPLETED (its job indexed and served)."""
        deadline = time.monotonic() + timeout
        for v in variants:
            while True:
                state = self.variant(entity, model, v).get("variant_state")
                if state == "COMPLETED":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"variant {v} is still {state} after {timeout:.0f} s; inspect it with "
                        f"GET {self.admin_url}/api/v1/models/{entity}/{model}/variants/{v}")
                time.sleep(poll)


class _Progress:
    """A one-line progress bar on stderr (rows sent, rate, ETA)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.sent, self.enabled = total, 0, enabled and total > 0
        self.started = time.monotonic()

    def advance(self, n: int) -> None:
        self.sent += n
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.sent / elapsed
        eta = (self.total - self.sent) / rate if rate > 0 else 0.0
        filled = int(30 * self.sent / self.total)
        sys.stderr.write(f"\ringesting [{'=' * filled}{' ' * (30 - filled)}] "
                         f"{self.sent}/{self.total} rows ({rate:.0f}/s, eta {eta:.0f} s)")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
