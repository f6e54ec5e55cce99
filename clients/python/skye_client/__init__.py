"""Python client of Skye.

>>> from skye_client import SkyeClient
>>> client = SkyeClient("localhost:9090", caller_id="notebook")
>>> hits = client.similar("catalog", "intent", "organic", vectors=[[1, 0, 0, 0]], limit=5)
>>> [(c.id, c.score) for c in hits[0]]

`SkyeAdmin` registers models, runs a job (events plus an EOF per partition) and waits for the
variants to serve it.
"""

from .admin import AdminError, SkyeAdmin
from .client import Candidate, CandidateEmbedding, Filter, SkyeClient, SkyeError

__all__ = [
    "AdminError",
    "Candidate",
    "CandidateEmbedding",
    "Filter",
    "SkyeAdmin",
    "SkyeClient",
    "SkyeError",
]
