"""The call-center scoring API against real stores: a registered champion and segment model in MLflow,
features in Feast's local SQLite online store (TestClient) and in a real Redis server started for
these tests (stopped, frozen and restarted to see the API fail fast and recover)."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanishgas.serving.service import FREEZE_EVERY_ANSWERS
from spanishgas.settings import ApiSettings, Settings
from tests.conftest import free_port
from tests.integration.conftest import AUTH, KEY, SECOND_KEY, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(served: dict[str, Any]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(served["settings"]), raise_server_exceptions=False) as c:
        yield c


def _some_customers(served: dict[str, Any], n: int) -> list[str]:
    return [str(c) for c in served["batch"].index[:n]]


def test_score_equals_the_batch_table_for_the_same_model_version(client: Any, served: dict[str, Any]) -> None:
    batch = served["batch"]
    for customer_id in _some_customers(served, 25):
        reply = client.get(f"/score/{customer_id}", headers=AUTH)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        row = batch.loc[customer_id]
        assert body["customer_id"] == customer_id
        assert body["model"]["version"] == row["model_version"] == served["version"]
        assert body["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-9)
        assert body["risk_tier"] == row["risk_tier"]
        assert body["segment"]["id"] == row["segment_id"] and body["segment"]["name"] == row["segment_name"]
        assert body["segment"]["customer_segment"] == row["customer_segment"]
        assert body["recommendation"]["action"] == row["action"]
        assert body["recommendation"]["timing"] == row["timing_window"]
        assert body["recommendation"]["expected_margin_impact_eur"] == pytest.approx(row["expected_margin_impact_eur"])
        batch_reasons = json.loads(row["reasons_json"])
        assert [r["phrase"] for r in body["reasons"]] == [r["phrase"] for r in batch_reasons]
        assert all(r["contribution"] > 0 for r in body["reasons"])
        assert body["feature_timestamp"] is not None and body["what_if"] is False


def test_every_customers_action_and_why_equal_the_batch_plan_without_a_binding_budget(
    client: Any, served: dict[str, Any]
) -> None:
    """The batch job ran without a budget: for every customer the API recommends the same action, decided
    by the same rule, with the same words (both in the default language, Spanish)."""
    batch = served["batch"]
    ids = [str(c) for c in batch.index]
    for start in range(0, len(ids), 100):
        reply = client.post("/score/batch", json={"customer_ids": ids[start : start + 100]}, headers=AUTH)
        assert reply.status_code == 200, reply.text
        for body in reply.json()["scores"]:
            row = batch.loc[body["customer_id"]]
            got = body["recommendation"]
            assert (got["action"], got["rule"], got["why"]) == (row["action"], row["decision_rule"], row["why"])
            assert got["free_actions"] == json.loads(row["free_actions_json"]) and got["free_actions"]
            assert body["language"] == "es"
    assert set(batch["decision_rule"]) >= {"no_offer_pays"}


def test_the_answer_speaks_the_language_asked_for(client: Any, served: dict[str, Any]) -> None:
    customer = _some_customers(served, 1)[0]
    default = client.get(f"/score/{customer}", headers=AUTH)
    english = client.get(f"/score/{customer}?lang=en", headers=AUTH)
    negotiated = client.get(f"/score/{customer}", headers={**AUTH, "Accept-Language": "en-GB,en;q=0.9,es;q=0.5"})
    both = client.get(f"/score/{customer}?lang=es", headers={**AUTH, "Accept-Language": "en"})
    assert default.headers["content-language"] == "es" and default.json()["language"] == "es"
    assert english.json()["language"] == negotiated.json()["language"] == "en"
    assert english.json()["reasons"] == negotiated.json()["reasons"]
    assert both.json()["language"] == "es"  # ?lang= wins over the header
    es, en = default.json(), english.json()
    assert [r["feature"] for r in es["reasons"]] == [r["feature"] for r in en["reasons"]]
    if es["reasons"]:
        assert es["reasons"][0]["phrase"] != en["reasons"][0]["phrase"]
    assert es["recommendation"]["why"] != en["recommendation"]["why"]
    assert en["agent_notes"]["notes"][0].startswith("margin: ") and es["agent_notes"]["notes"][0].startswith("margen: ")
    what_if = client.post(
        "/score?lang=en", json={"customer_id": customer, "features": {"complaints_90d": 3}}, headers=AUTH
    )
    assert what_if.status_code == 200 and what_if.json()["language"] == "en"
    assert client.get(f"/score/{customer}?lang=fr", headers=AUTH).status_code == 422


def test_no_reason_in_the_whole_book_is_a_fallback_internal_or_false(served: dict[str, Any]) -> None:
    """Every reason of every scored customer of the generated delivery, in English (checked against the
    truth conditions) and in Spanish (the published table): never a "<meaning>: <number>" fallback, never
    an internal figure, never false at the customer's value."""
    from spanishgas.model.registry import load_version
    from spanishgas.retention.job import latest_candidates
    from spanishgas.retention.reasons import NOT_SAYABLE
    from spanishgas.retention.scoring import score
    from tests.reason_truth import FALLBACK, false_because

    settings = served["settings"]
    _, frame = latest_candidates(settings)
    english = score(load_version(settings).model, frame, lang="en")
    said = 0
    for reasons in english["reasons"]:
        for r in reasons:
            assert r.feature not in NOT_SAYABLE
            assert false_because(r.feature, r.value, r.phrase) is None, (r, false_because(r.feature, r.value, r.phrase))
            said += 1
    assert said > len(frame)  # most customers have several reasons
    for raw in served["batch"]["reasons_json"]:
        for r in json.loads(raw):
            assert not FALLBACK.search(r["phrase"]) and r["feature"] not in NOT_SAYABLE, r
    assert not served["batch"]["why"].str.contains(r"\{|: not known").any()


def test_a_new_materialization_is_warmed_and_never_answered_from_older_features(
    stack: dict[str, Any], served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the daily materialization every customer's features change: the service (stack profile:
    Redis, the record in Postgres) warms the answers for the new features as soon as the store's record
    moves, the way it follows the champion alias, and a request before that is computed from the new
    features, never answered from the old ones."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from spanishgas.feature_store.store import materialize
    from spanishgas.serving.online import OnlineVector

    with TestClient(create_app(stack["settings"]), raise_server_exceptions=False) as c:
        service = c.app.state.service
        customer, other = _some_customers(served, 2)
        old = c.get(f"/score/{customer}", headers=AUTH).json()
        assert service.cache.hits == 1  # warmed at load
        assert not service.rewarm_if_materialized(service.served)  # nothing new yet
        read = service.reader.read
        # tomorrow's snapshot moves the feature that weighs most on this customer's risk today
        moved = old["reasons"][0]["feature"]

        def tomorrow(value: Any) -> float:
            return 0.0 if value else 1.0

        def tomorrows_features(ids: list[str]) -> list[OnlineVector]:
            out = []
            for v in read(ids):
                values = {**v.values, moved: tomorrow(v.values.get(moved))} if v.found else None
                out.append(OnlineVector(v.customer_id, v.event_timestamp, (*v.fingerprint, "tomorrow"), values))
            return out

        monkeypatch.setattr(service.reader, "read", tomorrows_features)
        misses = service.cache.misses
        before_rewarm = c.get(f"/score/{customer}", headers=AUTH).json()
        assert service.cache.misses == misses + 1  # computed, not the cached answer for yesterday's features
        expected = service.score_what_if(customer, {moved: tomorrow(read([customer])[0].values.get(moved))})
        assert before_rewarm["churn_probability"] == pytest.approx(expected.churn_probability)
        assert before_rewarm["churn_probability"] != pytest.approx(old["churn_probability"], abs=1e-9)

        materialize(stack["settings"], store=stack["store"])  # the real copy: its record in Postgres moves
        service.refresh()  # what the watcher does every reload interval
        assert service.rewarms == 1 and service.materialization is not None
        hits = service.cache.hits
        assert c.get(f"/score/{other}", headers=AUTH).status_code == 200
        assert service.cache.hits == hits + 1  # warmed for the new features before anyone asked


def test_unknown_customer_is_404_and_malformed_ids_are_422(client: Any) -> None:
    reply = client.get("/score/C99999999", headers=AUTH)
    assert reply.status_code == 404
    assert reply.json() == {"detail": "customer C99999999 has no features in the online store"}
    for bad in ["not an id", "x" * 65, "-C001", "C0.1", "C%C3%A9"]:
        assert client.get(f"/score/{bad}", headers=AUTH).status_code == 422, bad


def test_every_scoring_route_needs_a_valid_key(client: Any, served: dict[str, Any]) -> None:
    from fastapi.routing import APIRoute

    customer = _some_customers(served, 1)[0]
    calls = {
        ("GET", "/score/{customer_id}"): lambda h: client.get(f"/score/{customer}", headers=h),
        ("POST", "/score"): lambda h: client.post("/score", json={"customer_id": customer}, headers=h),
        ("POST", "/score/batch"): lambda h: client.post("/score/batch", json={"customer_ids": [customer]}, headers=h),
        ("GET", "/model"): lambda h: client.get("/model", headers=h),
    }
    open_routes = {"/health", "/ready", "/metrics"}
    # A new route must be added to `calls` (and so be checked) unless it is one of the open ones.
    routes = {(m, r.path) for r in client.app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert {r for r in routes if r[1] not in open_routes} == set(calls)
    for (method, path), call in calls.items():
        assert call({}).status_code == 401, (method, path)
        assert call({"X-API-Key": "wrong"}).status_code == 401, (method, path)
        assert call({"X-API-Key": KEY + "x"}).status_code == 401, (method, path)
        assert call({"X-API-Key": SECOND_KEY}).status_code == 200, (method, path)
    for path in open_routes:
        assert client.get(path).status_code == 200, path


def test_what_if_changes_features_and_validates_the_payload(client: Any, served: dict[str, Any]) -> None:
    customer = _some_customers(served, 1)[0]
    now = client.get(f"/score/{customer}", headers=AUTH).json()
    same = client.post("/score", json={"customer_id": customer}, headers=AUTH).json()
    assert same["what_if"] is True and same["churn_probability"] == now["churn_probability"]

    changed = client.post(
        "/score",
        json={"customer_id": customer, "features": {"complaints_90d": 3, "months_to_renewal": 0.5}},
        headers=AUTH,
    )
    assert changed.status_code == 200 and changed.json()["what_if"] is True
    assert changed.json()["customer_id"] == customer and 0 <= changed.json()["churn_probability"] <= 1

    # A vector without a customer: features left out are unknown to the model, and the answer says which.
    info = client.get("/model", headers=AUTH).json()
    partial = client.post("/score", json={"features": {"months_to_renewal": 2.0}}, headers=AUTH)
    assert partial.status_code == 200 and partial.json()["customer_id"] is None
    assert len(partial.json()["unknown_features"]) == info["features"] - 1
    assert "months_to_renewal" not in partial.json()["unknown_features"]
    unknown = client.post("/score", json={"customer_id": customer, "features": {"shoe_size": 42}}, headers=AUTH)
    assert unknown.status_code == 422 and "shoe_size" in json.dumps(unknown.json()["detail"])
    not_finite = client.post(
        "/score",
        content='{"customer_id": "' + customer + '", "features": {"months_to_renewal": NaN}}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert not_finite.status_code == 422
    extra = client.post("/score", json={"customer_id": customer, "discount": 5}, headers=AUTH)
    assert extra.status_code == 422
    missing_customer = client.post("/score", json={"customer_id": "C99999999"}, headers=AUTH)
    assert missing_customer.status_code == 404


def test_what_if_with_a_whole_vector_scores_like_the_customer(client: Any, served: dict[str, Any]) -> None:
    """The vector the batch table scored, posted without a customer id, gets the same probability."""
    from spanishgas.retention.job import latest_candidates

    _, candidates = latest_candidates(served["settings"])
    customer = _some_customers(served, 1)[0]
    row = candidates.set_index("customer_id").loc[customer]
    model_features = served["data"].features
    vector = {f: (None if row[f] != row[f] else float(row[f])) for f in model_features}
    reply = client.post("/score", json={"features": vector}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    assert reply.json()["churn_probability"] == pytest.approx(served["batch"].loc[customer, "churn_probability"])
    assert reply.json()["customer_id"] is None


def test_batch_scores_found_customers_and_lists_unknown_ones(client: Any, served: dict[str, Any]) -> None:
    ids = _some_customers(served, 3)
    reply = client.post("/score/batch", json={"customer_ids": [*ids, "C99999999", ids[0]]}, headers=AUTH)
    assert reply.status_code == 200
    body = reply.json()
    assert [s["customer_id"] for s in body["scores"]] == ids and body["not_found"] == ["C99999999"]
    too_many = [f"C{i:05d}" for i in range(served["settings"].api.batch_max_customers + 1)]
    assert client.post("/score/batch", json={"customer_ids": too_many}, headers=AUTH).status_code == 422
    assert client.post("/score/batch", json={"customer_ids": []}, headers=AUTH).status_code == 422


def test_model_health_ready_and_metrics(client: Any, served: dict[str, Any]) -> None:
    info = client.get("/model", headers=AUTH).json()
    assert info["name"] == "spanishgas-churn" and info["alias"] == "champion"
    assert info["feature_service"] == "call_center_v1" and info["metrics"]["test_pr_auc"] > 0
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["model_version"] == info["version"]

    customer = _some_customers(served, 1)[0]
    client.get(f"/score/{customer}", headers=AUTH)
    text = client.get("/metrics").text
    assert 'spanishgas_api_requests_total{method="GET",route="/score/{customer_id}",status="200"}' in text
    assert "spanishgas_api_request_seconds_bucket" in text and "spanishgas_api_feature_fetch_seconds" in text
    assert f'spanishgas_api_predictions_total{{model_version="{info["version"]}",risk_tier=' in text
    assert 'spanishgas_api_model_info{name="spanishgas-churn",segment_version=' in text
    assert customer not in text  # no customer ids in label values


def test_metrics_can_require_the_key(served: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    api = served["settings"].api.model_copy(update={"metrics_require_key": True})
    with TestClient(create_app(served["settings"].model_copy(update={"api": api}))) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=AUTH).status_code == 200


def test_no_model_yet_is_503_saying_so_and_no_keys_refuses_to_start(served: dict[str, Any], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    empty = served["settings"].model_copy(
        update={
            "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'empty.db'}",
            "mlflow_registry_uri": f"sqlite:///{tmp_path / 'empty.db'}",
        }
    )
    with TestClient(create_app(empty)) as c:
        reply = c.get(f"/score/{_some_customers(served, 1)[0]}", headers=AUTH)
        assert reply.status_code == 503 and "spanishgas train" in reply.json()["detail"]
        assert c.get("/ready").status_code == 503 and c.get("/health").status_code == 200
        assert c.get("/model", headers=AUTH).status_code == 503

    no_keys = served["settings"].model_copy(update={"api": ApiSettings()})
    with pytest.raises(RuntimeError, match="no API keys"), TestClient(create_app(no_keys)):
        pass


def test_internal_errors_carry_no_stack_trace(client: Any, served: dict[str, Any]) -> None:
    service = client.app.state.service
    original = service.reader.read

    def broken(ids: list[str]) -> list[Any]:
        raise ZeroDivisionError("secret internals")

    service.reader.read = broken
    try:
        reply = client.get(f"/score/{_some_customers(served, 1)[0]}", headers=AUTH)
    finally:
        service.reader.read = original
    assert reply.status_code == 500
    assert reply.json() == {"detail": "internal error; the service logged the details"}


def _second_version(served: dict[str, Any]) -> str:
    """Another registered version of the churn model (trained once per session). It resumes the same Optuna
    study, so its scores equal the first version's: the tests that use it check version labels."""
    from spanishgas.model.train import train

    if "second_version" not in served:
        served["second_version"] = train(served["settings"], "E5", 2, data=served["data"]).model_version
    assert served["second_version"] != served["version"]
    return str(served["second_version"])


def _move_champion(served: dict[str, Any], version: str) -> None:
    from mlflow.tracking import MlflowClient

    settings = served["settings"]
    registry = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    registry.set_registered_model_alias(settings.model.registered_name, "champion", version)


def _frozen(answers: list[Any]) -> int:
    """How many of ``answers`` the garbage collector's passes no longer visit (gc.freeze())."""
    tracked = {id(o) for o in gc.get_objects()}
    return sum(id(answer) not in tracked for answer in answers)


def test_a_moved_champion_is_served_without_dropping_requests(client: Any, served: dict[str, Any]) -> None:
    """Move the alias to a second version, keep requesting: every answer is 200 and the new version arrives
    through the background check. The local profile's store cannot list customers, so the new version's
    answers fill the cache as asked, and are frozen away from the collector's full passes as they
    accumulate. The alias is moved back afterwards for the tests that compare with the first version's
    batch table."""
    second = _second_version(served)
    customer = _some_customers(served, 1)[0]
    service = client.app.state.service
    _move_champion(served, second)
    try:
        versions, statuses = set(), []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = client.get(f"/score/{customer}", headers=AUTH)
            statuses.append(reply.status_code)
            versions.add(reply.json()["model"]["version"])
            if reply.json()["model"]["version"] == second:
                break
        assert set(statuses) == {200} and second in versions
        assert client.get("/model", headers=AUTH).json()["version"] == second
        # the new version's answers are filled as asked, not all at the switch; the first version's stay
        # (a rollback's target), and nothing else is cached
        cached = _cached_versions(service)
        assert 0 < cached[second] <= len(statuses) and set(cached) <= {second, served["version"]}
        service.freezer.every = 5  # 1,000 in service; the test world has a few hundred customers
        for other in _some_customers(served, 12):
            assert client.get(f"/score/{other}", headers=AUTH).status_code == 200
        assert service.freezer.freezes >= 1 and _frozen(list(service.cache._items.values())) >= 5
    finally:
        service.freezer.every = FREEZE_EVERY_ANSWERS
        _move_champion(served, served["version"])


# -- the stack profile: Feast on Postgres + a Redis server of our own ------------------------------------


def test_redis_reader_returns_what_the_feast_sdk_returns(stack: dict[str, Any], served: dict[str, Any]) -> None:
    """The direct Redis read decodes Feast's own layout: same values and timestamps for every customer."""
    from spanishgas.serving.online import FeastReader, RedisReader

    sdk = FeastReader(stack["store"])
    direct = RedisReader.from_store(stack["store"], stack["settings"])
    assert direct.features == sdk.features
    ids = [*served["batch"].index.astype(str), "C99999999"]
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        for a, b in zip(sdk.read(chunk), direct.read(chunk), strict=True):
            assert a.customer_id == b.customer_id and a.event_timestamp == b.event_timestamp
            assert a.values == pytest.approx(b.values, nan_ok=True), a.customer_id
    assert not direct.read(["C99999999"])[0].found


def _cached_versions(service: Any) -> dict[str, int]:
    """How many answers the cache holds per churn model version."""
    out: dict[str, int] = {}
    for key in list(service.cache._items):
        out[key[0]] = out.get(key[0], 0) + 1
    return out


def _until(condition: Any, client: Any, customer: str, seconds: float = 60) -> None:
    """Keep an agent calling (every answer 200) until ``condition()`` holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert client.get(f"/score/{customer}", headers=AUTH).status_code == 200
        time.sleep(0.1)


def test_a_promoted_challenger_and_a_rollback_find_their_answers_cached(
    stack: dict[str, Any], served: dict[str, Any]
) -> None:
    """With Redis (which lists its customers), the service warms the challenger's answers beside the
    champion's before it is ready, and keeps the previous champion's: promoting the challenger and rolling
    back again are answered from the cache, with no answer computed."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    second, first = _second_version(served), served["version"]  # the training set `challenger` to `second`
    customer = _some_customers(served, 1)[0]
    with TestClient(create_app(stack["settings"])) as c:
        service = c.app.state.service
        everyone = len(service.reader.customer_ids())
        assert _cached_versions(service) == {first: everyone, second: everyone}
        try:
            for version in (second, first):  # promote, then roll back
                misses = service.cache.misses
                _move_champion(served, version)
                _until(lambda v=version: c.get("/model", headers=AUTH).json()["version"] == v, c, customer)
                for other in _some_customers(served, 20):
                    assert c.get(f"/score/{other}", headers=AUTH).json()["model"]["version"] == version
                assert service.cache.misses == misses
                assert _cached_versions(service) == {first: everyone, second: everyone}
        finally:
            _move_champion(served, first)


def test_a_champion_not_warmed_ahead_is_warmed_behind_it(stack: dict[str, Any], served: dict[str, Any]) -> None:
    """Without the challenger warmed ahead, a moved champion serves at once and the background check then
    warms its answers behind it, paced, frozen away from the collector as they accumulate; the previous
    champion's answers stay for a rollback."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    second, first = _second_version(served), served["version"]
    base: Settings = stack["settings"]
    settings = base.model_copy(update={"api": base.api.model_copy(update={"warm_challenger": False})})
    with TestClient(create_app(settings)) as c:
        service = c.app.state.service
        everyone = len(service.reader.customer_ids())
        assert _cached_versions(service) == {first: everyone}
        service.freezer.every = 5  # 1,000 in service; the test world has a few hundred customers
        freezes = service.freezer.freezes
        _move_champion(served, second)
        try:
            warmed = {first: everyone, second: everyone}
            _until(lambda: _cached_versions(service) == warmed, c, _some_customers(served, 1)[0])
            assert service.served.version == second and service.freezer.freezes > freezes
            answers = [a for k, a in list(service.cache._items.items()) if k[0] == second]
            assert _frozen(answers) >= everyone - 5  # all but the last few since the last freeze
        finally:
            service.freezer.every = FREEZE_EVERY_ANSWERS
            _move_champion(served, first)


def test_stack_api_fails_fast_when_redis_stops_and_recovers_by_itself(
    stack: dict[str, Any], served: dict[str, Any]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from api.main import create_app

    server: RedisServer = stack["server"]
    customer = _some_customers(served, 1)[0]
    expected = served["batch"].loc[customer, "churn_probability"]
    # A back-off long enough that a burst of requests on a slow machine fits inside it.
    backoff = 3.0
    base: Settings = stack["settings"]
    settings = base.model_copy(update={"api": base.api.model_copy(update={"online_store_backoff_s": backoff})})

    def timed_get(c: Any) -> Any:
        """The request must come back (not hang): judged against 40 times the configured timeout."""
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.update(reply=c.get(f"/score/{customer}", headers=AUTH)))
        worker.start()
        worker.join(timeout=40 * settings.api.online_store_timeout_s)
        assert not worker.is_alive(), "request hung while the online store was unavailable"
        return box["reply"]

    def store_errors(c: Any) -> float:
        """Failed online reads so far (other apps in this test process may share the series: use deltas)."""
        name = "spanishgas_api_online_store_errors_total "
        line = next(x for x in c.get("/metrics").text.splitlines() if x.startswith(name))
        return float(line.split()[1])

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        service = c.app.state.service
        assert service.reader.__class__.__name__ == "RedisReader"
        # Startup scored every customer Redis holds into the cache, many per model call ...
        in_store = service.reader.customer_ids()
        champion_answers = [k for k in service.cache._items if k[0] == service.served.version]
        assert len(in_store) >= len(served["batch"]) and len(champion_answers) == len(in_store)
        first = c.get(f"/score/{customer}", headers=AUTH)
        # ... and those answers are the batch job's, served from the cache.
        assert first.status_code == 200 and first.json()["churn_probability"] == pytest.approx(expected)
        assert (service.cache.hits, service.cache.misses) == (1, 0)
        for other in _some_customers(served, 30):
            answer = c.get(f"/score/{other}", headers=AUTH).json()
            row = served["batch"].loc[other]
            assert answer["churn_probability"] == pytest.approx(row["churn_probability"], abs=1e-9)
            assert answer["recommendation"]["action"] == row["action"]

        errors = store_errors(c)
        server.signal(signal.SIGSTOP)  # frozen: connections open, no answers -> timeout path
        try:
            frozen = timed_get(c)
            assert frozen.status_code == 503 and "feature store unavailable" in frozen.json()["detail"]
            assert frozen.headers["Retry-After"] == "3"
            assert store_errors(c) == errors + 1
            # 16 agents at once on the frozen store: all refused at once, none waits for the store again
            with ThreadPoolExecutor(16) as pool:
                burst = list(pool.map(lambda _: c.get(f"/score/{customer}", headers=AUTH), range(16)))
            assert [r.status_code for r in burst] == [503] * 16
            assert all("not retried" in r.json()["detail"] for r in burst)
            assert store_errors(c) == errors + 1
            assert c.get("/ready").status_code == 503  # readiness asks the store itself
        finally:
            server.signal(signal.SIGCONT)
        time.sleep(backoff)
        assert timed_get(c).status_code == 200

        server.save_and_kill()  # down: connection refused
        down = timed_get(c)
        assert down.status_code == 503 and down.headers["Retry-After"] == "3"
        assert store_errors(c) == errors + 2
        server.start()  # back on the same port with its data file
        time.sleep(backoff)
        recovered = timed_get(c)
        assert recovered.status_code == 200 and recovered.json()["churn_probability"] == pytest.approx(expected)
        assert c.get("/ready").status_code == 200
        assert store_errors(c) == errors + 2


# -- property-based fuzzing of the OpenAPI document ------------------------------------------------------


def test_openapi_document_is_valid(client: Any) -> None:
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)
    assert {"/score/{customer_id}", "/score", "/score/batch", "/model", "/health", "/ready"} <= set(document["paths"])


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzed_requests_never_get_a_server_error(client: Any, mode: str) -> None:
    """schemathesis generates requests from the OpenAPI document for every operation: valid ones must get
    answers that conform to the document; invalid ones must never get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    generation = schemathesis.GenerationMode(mode)
    for operation in operations:
        if generation is schemathesis.GenerationMode.NEGATIVE and not operation.path_parameters and not operation.body:
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=generation))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            if generation is schemathesis.GenerationMode.POSITIVE:
                case.call_and_validate(headers=AUTH)
            else:
                case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        exercise()


# -- `spanishgas serve`: uvicorn with two workers, one Prometheus exposition ----------------------------


def test_spanishgas_serve_answers_with_two_workers_and_aggregates_metrics(
    served: dict[str, Any], tmp_path: Path
) -> None:
    import sys
    import urllib.error
    import urllib.request

    settings: Settings = served["settings"]
    port = free_port()
    env = {
        **os.environ,
        "SPANISHGAS_PROFILE": "local",
        "SPANISHGAS_DATA_ROOT": str(settings.data_root),
        "SPANISHGAS_LAKE_URI": str(settings.lake_uri),
        "SPANISHGAS_FEAST__LOCAL_DIR": str(settings.feast.local_dir),
        "SPANISHGAS_MLFLOW_TRACKING_URI": str(settings.mlflow_tracking_uri),
        "SPANISHGAS_MLFLOW_REGISTRY_URI": str(settings.mlflow_registry_uri),
        "SPANISHGAS_API__API_KEYS": json.dumps([KEY]),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    binary = str(Path(sys.executable).with_name("spanishgas"))
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    try:
        for _ in range(300):
            try:
                if get("/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"spanishgas serve did not become ready: {(tmp_path / 'serve.log').read_text()[-3000:]}")
        customers = _some_customers(served, 20)
        for customer in customers:
            status, body = get(f"/score/{customer}", AUTH)
            assert status == 200, body
            assert json.loads(body)["churn_probability"] == pytest.approx(
                served["batch"].loc[customer, "churn_probability"]
            )
        assert get(f"/score/{customers[0]}")[0] == 401
        metrics = get("/metrics")[1]
        # every worker's requests appear in one exposition
        line = 'spanishgas_api_requests_total{method="GET",route="/score/{customer_id}",status="200"}'
        counted = [float(x.rsplit(" ", 1)[1]) for x in metrics.splitlines() if x.startswith(line)]
        assert counted == [float(len(customers))]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
