"""Pure parts of the scoring service: payload validation, the scored-vector cache, value decoding,
API-key checks and metric labels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def test_what_if_payload_accepts_known_features_only_and_finite_values() -> None:
    from spanishgas.serving.schemas import what_if_request_model

    request_model = what_if_request_model(["x", "y"])
    request = request_model.model_validate({"customer_id": "C00001", "features": {"x": 1.5, "y": None}})
    assert request.feature_values() == {"x": 1.5, "y": None}
    assert request_model.model_validate({"features": {"x": 2}}).feature_values() == {"x": 2.0}  # y left out
    assert request_model.model_validate({}).feature_values() == {}
    with pytest.raises(ValidationError):
        request_model.model_validate_json('{"features": {"x": NaN}}')
    with pytest.raises(ValidationError):
        request_model.model_validate({"features": {"x": float("inf")}})
    with pytest.raises(ValidationError):
        request_model.model_validate({"features": {"x": 3.4028235677973366e38}})  # infinite in float32
    with pytest.raises(ValidationError):
        request_model.model_validate({"features": {"shoe_size": 42}})
    with pytest.raises(ValidationError):
        request_model.model_validate({"customer_id": "C1", "discount": 5})
    with pytest.raises(ValidationError):
        request_model.model_validate({"customer_id": "C 1"})


def test_batch_payload_limit_is_in_the_schema() -> None:
    from spanishgas.serving.schemas import batch_request_model

    model = batch_request_model(3)
    assert model.model_json_schema()["properties"]["customer_ids"]["maxItems"] == 3
    model.model_validate({"customer_ids": ["C1", "C2", "C3"]})
    with pytest.raises(ValidationError):
        model.model_validate({"customer_ids": ["C1", "C2", "C3", "C4"]})
    with pytest.raises(ValidationError):
        model.model_validate({"customer_ids": []})


@pytest.mark.parametrize(
    ("customer_id", "ok"),
    [("C00042", True), ("cust_42-b", True), ("C" * 64, True), ("C" * 65, False), ("-C1", False), ("C/1", False)],
)
def test_customer_id_pattern(customer_id: str, ok: bool) -> None:
    from spanishgas.serving.schemas import CUSTOMER_ID_PATTERN

    assert bool(re.fullmatch(CUSTOMER_ID_PATTERN, customer_id)) is ok


def _scored(p: float):  # type: ignore[no-untyped-def]
    from spanishgas.serving.schemas import AgentNotes, Recommendation, Segment
    from spanishgas.serving.service import ScoredVector

    recommendation = Recommendation(
        action="no_offer", timing="none", offer_cost_eur=0, expected_margin_impact_eur=0, expected_monthly_loss_eur=0,
        rule="no_offer_pays", why="no offer pays for itself", free_actions=[],
    )  # fmt: skip
    notes = AgentNotes(monthly_margin_eur=0.0, margin_at_risk_eur=0.0, notes=[])
    segment = Segment(id=0, name="s", archetype="default")
    return ScoredVector(p, "low", False, segment, [], recommendation, notes, [], "es")


def test_score_cache_keeps_the_most_recently_used_vectors() -> None:
    from spanishgas.serving.service import ScoreCache

    cache = ScoreCache(2)
    cache.put(("v1", 1.0), _scored(0.1))
    cache.put(("v1", 2.0), _scored(0.2))
    assert cache.get(("v1", 1.0)).churn_probability == 0.1  # type: ignore[union-attr]
    cache.put(("v1", 3.0), _scored(0.3))  # evicts (v1, 2.0), the least recently used
    assert cache.get(("v1", 2.0)) is None and cache.get(("v1", 3.0)) is not None
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.get(("v2", 1.0)) is None  # another model version never shares an answer

    off = ScoreCache(0)
    off.put(("v1", 1.0), _scored(0.1))
    assert off.get(("v1", 1.0)) is None


def test_a_new_champion_drops_the_previous_versions_answers() -> None:
    from spanishgas.serving.service import ScoreCache

    cache = ScoreCache(10)
    for key in [("1", "1", "es", b"a"), ("1", "1", "en", b"a"), ("2", "1", "es", b"a"), ("2", "1", "es", b"b")]:
        cache.put(key, _scored(0.1))
    assert cache.keep_only({"1", "2"}, "1") == 0  # the champion, the one before it, the challenger: kept
    assert cache.keep_only({"2"}, "1") == 2
    assert cache.get(("1", "1", "es", b"a")) is None and cache.get(("2", "1", "es", b"b")) is not None
    assert cache.keep_only({"2"}, "2") == 2  # another segment model: every answer's segment changes


def test_a_challenger_is_warmed_only_where_it_fits_beside_the_champion() -> None:
    """The previous champion's answers give way to the challenger's; the champion's never do."""
    from types import SimpleNamespace

    from spanishgas.serving.service import ScoringService
    from spanishgas.settings import ApiSettings, Settings

    settings = Settings(api=ApiSettings(explanation_cache_size=10))
    service = ScoringService(settings, reader=SimpleNamespace(features=[]))  # type: ignore[arg-type]
    champion = SimpleNamespace(version="2", segment_version="1")
    service.previous_version = "1"
    for version in ("1", "2"):
        for i in range(4):
            service.cache.put((version, "1", "es", i), _scored(0.1))
    assert service._room_for(2, champion)  # type: ignore[arg-type]
    assert len(service.cache) == 8  # room enough: nothing dropped
    assert service._room_for(4, champion)  # type: ignore[arg-type]
    assert {k[0] for k in service.cache._items} == {"2"} and service.previous_version is None
    assert not service._room_for(7, champion)  # two versions of 7 customers do not fit in 10
    assert len(service.cache) == 4  # and the champion's answers stay


def test_answers_a_refilling_cache_gains_are_frozen_and_cyclic_garbage_is_not() -> None:
    import gc
    import weakref

    from spanishgas.serving.service import RefillFreezer, ScoreCache

    class Cycle:
        pass

    cache, freezer = ScoreCache(100), RefillFreezer(every=10)
    before = gc.get_freeze_count()
    try:
        for i in range(9):
            cache.put(("2", "1", "es", i), _scored(0.1))
            assert not freezer.cache_grew_to(len(cache))
        garbage = Cycle()
        garbage.me = garbage  # type: ignore[attr-defined]
        dead = weakref.ref(garbage)
        del garbage
        cache.put(("2", "1", "es", 9), _scored(0.1))
        answer = cache.get(("2", "1", "es", 9))
        assert any(o is answer for o in gc.get_objects())  # still in the collector's generations
        assert freezer.cache_grew_to(len(cache)) and freezer.freezes == 1
        assert gc.get_freeze_count() > before
        assert not any(o is answer for o in gc.get_objects())  # frozen: out of every full pass
        assert dead() is None  # collected first, not frozen with the answers
        assert not freezer.cache_grew_to(len(cache))  # no growth since: nothing to do
        cache.keep_only({"3"}, "1")
        freezer.frozen_at(len(cache))  # a switch emptied the cache: its refill counts from there
        assert freezer.baseline == 0
    finally:
        gc.unfreeze()


def test_feast_values_decode_to_plain_python() -> None:
    from feast.protos.feast.types.Value_pb2 import Null, Value

    from spanishgas.serving.online import _python_value

    assert _python_value(Value(double_val=2.5)) == 2.5
    assert _python_value(Value(string_val="SME")) == "SME"
    assert _python_value(Value(null_val=Null.NULL)) is None
    assert _python_value(Value()) is None


def test_api_key_check_accepts_any_configured_key_and_nothing_else() -> None:
    """Keys may be configured in the clear or as their SHA-256 (so the settings hold none in the clear)."""
    import hashlib

    from fastapi import HTTPException
    from pydantic import SecretStr
    from starlette.datastructures import State

    from api.deps import check_api_key
    from spanishgas.serving.keys import ApiKeys

    hashed = "sha256:" + hashlib.sha256(b"two").hexdigest()

    class _App:
        state = State({"api_keys": ApiKeys([SecretStr("one"), SecretStr(hashed)])})

    class _Request:
        app = _App()

    for good in ("one", "two"):
        check_api_key(_Request(), good)  # type: ignore[arg-type]
    for bad in (None, "", "on", "one ", "three", hashed, hashed.removeprefix("sha256:")):
        with pytest.raises(HTTPException) as err:
            check_api_key(_Request(), bad)  # type: ignore[arg-type]
        assert err.value.status_code == 401
    with pytest.raises(ValueError, match="64 hex digits"):
        ApiKeys([SecretStr("sha256:abc")])


def test_metrics_label_routes_not_customers() -> None:
    from spanishgas.serving.metrics import Metrics

    metrics = Metrics()
    # Once Feast has been imported, prometheus_client keeps values in shared files keyed by name and
    # labels, so earlier apps in the same test process may have counted the same series: compare deltas.
    route = {"route": "/score/{customer_id}", "method": "GET"}
    series = [
        ("spanishgas_api_requests_total", {**route, "status": "200"}, 1.0),
        ("spanishgas_api_request_seconds_bucket", {**route, "le": "0.0015"}, 1.0),
        ("spanishgas_api_request_seconds_bucket", {**route, "le": "0.001"}, 0.0),
        ("spanishgas_api_predictions_total", {"risk_tier": "high", "model_version": "3"}, 1.0),
        ("spanishgas_api_score_cache_lookups_total", {"result": "hit"}, 1.0),
        ("spanishgas_api_score_cache_lookups_total", {"result": "miss"}, 2.0),
    ]

    def value(name: str, labels: dict[str, str]) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    # A child series reads its shared value when it is first created, so create them before reading.
    metrics.requests.labels(route["route"], "GET", "200")
    metrics.latency.labels(route["route"], "GET")
    metrics.predictions.labels("high", "3")
    metrics.cache_lookups.labels("hit")
    metrics.cache_lookups.labels("miss")
    before = [value(name, labels) for name, labels, _ in series]
    metrics.observe_request("/score/{customer_id}", "GET", 200, 0.0012)
    metrics.prediction("high", "3")
    metrics.cache(hits=1, misses=2)
    for (name, labels, delta), was in zip(series, before, strict=True):
        assert value(name, labels) - was == delta, (name, labels)

    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'spanishgas_api_requests_total{method="GET",route="/score/{customer_id}",status="200"}' in text
    assert 'spanishgas_api_score_cache_lookups_total{result="miss"}' in text


def test_metrics_keep_their_series_when_feast_sets_the_multiprocess_variable_later(tmp_path: Path) -> None:
    """A single worker imports prometheus_client without the variable (values in memory); Feast sets it
    on its first online read. The exposition must still show the API's series. A fresh interpreter,
    because this test process may already have imported Feast."""
    script = f"""
import os
from spanishgas.serving.metrics import Metrics
metrics = Metrics()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}  # what feast.metrics does on import
metrics.observe_request("/score/{{customer_id}}", "GET", 200, 0.001)
print(metrics.exposition()[0].decode())
"""
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    assert 'spanishgas_api_requests_total{method="GET",route="/score/{customer_id}",status="200"} 1.0' in out
