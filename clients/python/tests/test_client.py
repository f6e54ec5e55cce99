import numpy as np
import pytest

from skye_client import AdminError, Filter, SkyeAdmin, SkyeClient, SkyeError

DIM = 8


def catalog(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(size=(n, DIM)).astype(np.float32)


def test_register_ingest_and_search(skye):
    admin = SkyeAdmin(skye.http("admin"), skye.http("consumers"), caller_id="pytest")
    admin.register_store()
    admin.register_entity("shop")
    admin.register_model("shop", "items", DIM, partitions=2)
    admin.register_variant("shop", "items", "all", payload={"price": "integer", "brand": "keyword"})
    vectors = catalog(300)
    ids = [f"i{k}" for k in range(300)]
    payloads = [{"price": k, "brand": "acme" if k % 2 else "zeta"} for k in range(300)]
    sent = admin.ingest("shop", "items", ids, vectors, payloads=payloads, progress=False)
    assert sent == 300
    assert admin.variant("shop", "items", "all")["variant_state"] == "COMPLETED"

    with SkyeClient(skye.grpc, caller_id="pytest") as client:
        # Each stored vector is its own nearest neighbour (cosine).
        hits = client.similar("shop", "items", "all", vectors=vectors[:3], limit=5)
        assert [h[0].id for h in hits] == ["i0", "i1", "i2"]
        assert all(len(h) == 5 for h in hits)
        assert hits[0][0].score == pytest.approx(1.0, abs=1e-4)

        # A filter (tuple, dict or Filter), and attributes back.
        for f in [("price", "LTE", [100]), {"field": "price", "op": "lte", "values": ["100"]},
                  Filter("price", "LTE", [100])]:
            (found,) = client.similar("shop", "items", "all", vectors=vectors[200], limit=10,
                                      filters=[f], attributes=["price", "brand"])
            assert len(found) == 10
            assert all(int(c.attributes["price"]) <= 100 for c in found)

        # By candidate id: the item itself is not returned.
        (by_id,) = client.similar("shop", "items", "all", candidate_ids=["i5"], limit=3)
        assert "i5" not in [c.id for c in by_id] and len(by_id) == 3

        stored = client.embeddings("shop", "items", "all", ["i1", "missing"])
        assert list(stored) == ["i1"]
        assert np.allclose(stored["i1"].embedding, vectors[1], atol=1e-5)

        scores = client.scores("shop", "items", "all", ["i1", "i2"], vectors[1])
        assert set(scores) == {"i1", "i2"}

        with pytest.raises(SkyeError) as e:
            client.similar("shop", "nope", "all", vectors=vectors[0])
        assert e.value.code.name == "NOT_FOUND" and "nope" in e.value.message
        with pytest.raises(SkyeError) as e:
            client.similar("shop", "items", "all", vectors=np.zeros(DIM + 1))
        assert e.value.code.name == "INVALID_ARGUMENT"
        with pytest.raises(ValueError):
            client.similar("shop", "items", "all", vectors=vectors[0], filters=[("price", "ABOUT", [1])])

    with pytest.raises(AdminError) as e:
        admin.register_variant("shop", "unknown", "v")
    assert e.value.status in (400, 404) and e.value.message


def test_unreachable_server_raises_unavailable_after_retries():
    client = SkyeClient("127.0.0.1:1", caller_id="pytest", timeout=0.5, retries=1)
    with pytest.raises(SkyeError) as e:
        client.similar("e", "m", "v", vectors=[[1.0, 0.0]])
    assert e.value.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def test_readme_quickstart_on_the_demo_catalog(demo):
    import time

    from skye_client import SkyeClient

    client = SkyeClient(demo.grpc, caller_id="readme")
    deadline = time.monotonic() + 120
    while True:  # the demo loads its catalog in the background
        try:
            hits = client.similar("demo", "products", "all", candidate_ids=["p40"], limit=5,
                                  attributes=["category", "price"])
            if hits and hits[0]:
                break
        except SkyeError:
            pass
        assert time.monotonic() < deadline, "the demo catalog never answered"
        time.sleep(0.5)
    assert len(hits[0]) == 5
    assert all(c.id != "p40" and c.attributes for c in hits[0])
