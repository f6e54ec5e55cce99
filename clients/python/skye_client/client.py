"""The serving API over gRPC: similar candidates, embeddings, scores."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import grpc

from ._proto import skye_pb2, skye_pb2_grpc

CALLER_ID_HEADER = "skye-caller-id"
TOKEN_HEADER = "skye-auth-token"

#: Codes worth another attempt (the server was down or overloaded), as in the Rust SDK.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)

OPERATORS = tuple(skye_pb2.Operator.keys())


class SkyeError(Exception):
    """A call Skye refused or could not answer: the gRPC code and Skye's message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Candidate:
    id: str
    score: float
    attributes: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateEmbedding:
    id: str
    embedding: List[float]
    search_embedding: List[float]


@dataclass(frozen=True)
class Filter:
    """One condition: `field op values`, e.g. ``Filter("price", "LTE", ["500"])``."""

    field: str
    op: str
    values: Sequence[Any]

    def to_proto(self) -> skye_pb2.Filter:
        op = self.op.upper()
        if op not in OPERATORS:
            raise ValueError(f"unknown filter operator {self.op!r}; one of {', '.join(OPERATORS)}")
        return skye_pb2.Filter(
            field=self.field, op=skye_pb2.Operator.Value(op), values=[str(v) for v in self.values]
        )


FilterLike = Union[Filter, Tuple[str, str, Sequence[Any]], Mapping[str, Any]]


def _filter(f: FilterLike) -> skye_pb2.Filter:
    if isinstance(f, Filter):
        return f.to_proto()
    if isinstance(f, Mapping):
        return Filter(f["field"], f["op"], f.get("values", [])).to_proto()
    name, op, values = f
    return Filter(name, op, values).to_proto()


def _rows(vectors: Any) -> List[List[float]]:
    """A list of vectors from a 2-d array, a 1-d array (one vector) or nested lists."""
    if hasattr(vectors, "tolist"):  # numpy arrays, without importing numpy
        vectors = vectors.tolist()
    vectors = list(vectors)
    if vectors and not isinstance(vectors[0], (list, tuple)) and not hasattr(vectors[0], "tolist"):
        vectors = [vectors]
    return [[float(x) for x in (v.tolist() if hasattr(v, "tolist") else v)] for v in vectors]


class SkyeClient:
    """A connection to Skye's serving port.

    Every call sends the caller id and token as metadata, runs under `timeout` seconds per
    attempt, and is retried `retries` times with doubling backoff when the server is
    unavailable or overloaded; other failures raise `SkyeError` at once.
    """

    def __init__(
        self,
        url: str = "localhost:9090",
        caller_id: str = "python",
        token: Optional[str] = None,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        backoff: float = 0.02,
        channel: Optional[grpc.Channel] = None,
    ):
        target = url.split("://", 1)[-1]
        if channel is not None:
            self._channel = channel
        elif url.startswith("https://"):
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
        else:
            self._channel = grpc.insecure_channel(target)
        self._similar = skye_pb2_grpc.SkyeSimilarCandidateServiceStub(self._channel)
        self._embeddings = skye_pb2_grpc.SkyeEmbeddingServiceStub(self._channel)
        self._metadata = [(CALLER_ID_HEADER, caller_id)]
        if token is not None:
            self._metadata.append((TOKEN_HEADER, token))
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "SkyeClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        wait = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code, details = e.code(), e.details() or ""
                if code in RETRYABLE and attempt < self.retries:
                    time.sleep(wait)
                    wait *= 2
                    continue
                raise SkyeError(code, details) from None
        raise AssertionError("unreachable")

    def similar(
        self,
        entity: str,
        model: str,
        variant: str,
        *,
        vectors: Any = None,
        candidate_ids: Optional[Iterable[str]] = None,
        filters: Optional[Iterable[FilterLike]] = None,
        limit: int = 10,
        offset: int = 0,
        attributes: Optional[Iterable[str]] = None,
    ) -> List[List[Candidate]]:
        """Nearest neighbours of each query vector (or of each candidate's stored vector),
        one list per query in order, best first."""
        if (vectors is None) == (candidate_ids is None):
            raise ValueError("give either vectors or candidate_ids")
        request = skye_pb2.SkyeRequest(
            entity=entity,
            modelName=model,
            variant=variant,
            limit=limit,
            offset=offset,
            attribute=list(attributes or []),
        )
        if vectors is not None:
            request.embeddings.extend(skye_pb2.Embedding(embedding=v) for v in _rows(vectors))
        else:
            request.candidateIds.extend(candidate_ids)
        if filters:
            request.globalFilters.filter.extend(_filter(f) for f in filters)
        answer = self._call(self._similar.getSimilarCandidates, request)
        return [
            [Candidate(c.id, c.meta.score, dict(c.meta.attributesMap)) for c in r.candidates]
            for r in answer.responses
        ]

    def embeddings(
        self, entity: str, model: str, variant: str, candidate_ids: Iterable[str]
    ) -> Dict[str, CandidateEmbedding]:
        """The stored vectors of the ids that have one."""
        request = skye_pb2.SkyeBulkEmbeddingRequest(
            entity=entity, modelName=model, variant=variant, candidateIds=list(candidate_ids)
        )
        answer = self._call(self._embeddings.getEmbeddingsForCandidates, request)
        return {
            c.id: CandidateEmbedding(c.id, list(c.embedding), list(c.searchEmbedding))
            for c in answer.candidatesEmbedding
            if c.embedding
        }

    def scores(
        self,
        entity: str,
        model: str,
        variant: str,
        candidate_ids: Iterable[str],
        vector: Any,
    ) -> Dict[str, float]:
        """The model's distance score between `vector` and each id's stored vector."""
        (row,) = _rows(vector)
        request = skye_pb2.EmbeddingDotProductRequest(
            entity=entity,
            modelName=model,
            variant=variant,
            candidateIds=list(candidate_ids),
            embedding=row,
        )
        answer = self._call(self._embeddings.getCandidateEmbeddingScores, request)
        return {s.candidateId: s.score for s in answer.candidateEmbeddingScores}
