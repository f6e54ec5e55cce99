from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IN: _ClassVar[Operator]
    NIN: _ClassVar[Operator]
    EX: _ClassVar[Operator]
    SEARCH: _ClassVar[Operator]
    LTE: _ClassVar[Operator]
    GTE: _ClassVar[Operator]
    BTWE: _ClassVar[Operator]
    BTW: _ClassVar[Operator]
    LT: _ClassVar[Operator]
    GT: _ClassVar[Operator]
    LAST_X_DAYS: _ClassVar[Operator]
    WTHN: _ClassVar[Operator]
IN: Operator
NIN: Operator
EX: Operator
SEARCH: Operator
LTE: Operator
GTE: Operator
BTWE: Operator
BTW: Operator
LT: Operator
GT: Operator
LAST_X_DAYS: Operator
WTHN: Operator

class SkyeRequest(_message.Message):
    __slots__ = ("entity", "candidateIds", "limit", "modelName", "variant", "filters", "attribute", "embeddings", "globalFilters", "offset")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATEIDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODELNAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    GLOBALFILTERS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    entity: str
    candidateIds: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    modelName: str
    variant: str
    filters: _containers.RepeatedCompositeFieldContainer[Filters]
    attribute: _containers.RepeatedScalarFieldContainer[str]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    globalFilters: Filters
    offset: int
    def __init__(self, entity: _Optional[str] = ..., candidateIds: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., modelName: _Optional[str] = ..., variant: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[Filters, _Mapping]]] = ..., attribute: _Optional[_Iterable[str]] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., globalFilters: _Optional[_Union[Filters, _Mapping]] = ..., offset: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("embedding",)
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, embedding: _Optional[_Iterable[float]] = ...) -> None: ...

class Filters(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: _containers.RepeatedCompositeFieldContainer[Filter]
    def __init__(self, filter: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("field", "op", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: Operator
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, field: _Optional[str] = ..., op: _Optional[_Union[Operator, str]] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class SkyeResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[CandidateResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[CandidateResponse, _Mapping]]] = ...) -> None: ...

class CandidateResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("id", "meta")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ...) -> None: ...

class Meta(_message.Message):
    __slots__ = ("score", "attributesMap")
    class AttributesMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTESMAP_FIELD_NUMBER: _ClassVar[int]
    score: float
    attributesMap: _containers.ScalarMap[str, str]
    def __init__(self, score: _Optional[float] = ..., attributesMap: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EmbeddingDotProductRequest(_message.Message):
    __slots__ = ("entity", "candidateIds", "embedding", "modelName", "variant")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATEIDS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    MODELNAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    entity: str
    candidateIds: _containers.RepeatedScalarFieldContainer[str]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    modelName: str
    variant: str
    def __init__(self, entity: _Optional[str] = ..., candidateIds: _Optional[_Iterable[str]] = ..., embedding: _Optional[_Iterable[float]] = ..., modelName: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class EmbeddingDotProductResponse(_message.Message):
    __slots__ = ("candidateEmbeddingScores",)
    CANDIDATEEMBEDDINGSCORES_FIELD_NUMBER: _ClassVar[int]
    candidateEmbeddingScores: _containers.RepeatedCompositeFieldContainer[CandidateEmbeddingScore]
    def __init__(self, candidateEmbeddingScores: _Optional[_Iterable[_Union[CandidateEmbeddingScore, _Mapping]]] = ...) -> None: ...

class CandidateEmbeddingScore(_message.Message):
    __slots__ = ("candidateId", "score")
    CANDIDATEID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    candidateId: str
    score: float
    def __init__(self, candidateId: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class SkyeBulkEmbeddingRequest(_message.Message):
    __slots__ = ("entity", "candidateIds", "modelName", "variant")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATEIDS_FIELD_NUMBER: _ClassVar[int]
    MODELNAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    entity: str
    candidateIds: _containers.RepeatedScalarFieldContainer[str]
    modelName: str
    variant: str
    def __init__(self, entity: _Optional[str] = ..., candidateIds: _Optional[_Iterable[str]] = ..., modelName: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class SkyeBulkEmbeddingResponse(_message.Message):
    __slots__ = ("candidatesEmbedding",)
    CANDIDATESEMBEDDING_FIELD_NUMBER: _ClassVar[int]
    candidatesEmbedding: _containers.RepeatedCompositeFieldContainer[CandidateEmbedding]
    def __init__(self, candidatesEmbedding: _Optional[_Iterable[_Union[CandidateEmbedding, _Mapping]]] = ...) -> None: ...

class CandidateEmbedding(_message.Message):
    __slots__ = ("id", "embedding", "searchEmbedding")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    SEARCHEMBEDDING_FIELD_NUMBER: _ClassVar[int]
    id: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    searchEmbedding: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ..., searchEmbedding: _Optional[_Iterable[float]] = ...) -> None: ...
