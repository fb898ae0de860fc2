"""The call-center scoring service: the champion model, the segment model and an online feature reader,
answering for one customer, a few, or a what-if vector. The FastAPI app in ``api/`` is a thin shell
over this class.

Scores come from the same functions the batch job uses (:mod:`spanishgas.retention.scoring`), so the
API and the weekly table agree for the same features and model version (tested). A scored vector is
cached per model version: the answer depends only on the feature values and the models, so a repeated
lookup skips the model and TreeSHAP (features are still read every time, so a new snapshot is seen).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from spanishgas.feature_store.definitions import CALL_CENTER_SERVICE, PROFILE_FIELDS
from spanishgas.i18n import Language
from spanishgas.serving.online import FeatureReader, OnlineStoreUnavailable, OnlineVector
from spanishgas.serving.schemas import (
    AgentNotes,
    ModelInfo,
    ModelRef,
    ReasonCode,
    Recommendation,
    ScoreResponse,
    Segment,
)

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.retention.offers import Policy
    from spanishgas.retention.segments import SegmentModel
    from spanishgas.settings import Settings

log = logging.getLogger(__name__)


class NoModel(RuntimeError):
    """No champion model (or no segment model) is registered yet."""


class CustomerNotFound(LookupError):
    """The online store holds no features for this customer."""


class InvalidFeatures(ValueError):
    """A request the schema let through but the service cannot accept (``loc`` says where)."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ("body",)) -> None:
        super().__init__(message)
        self.loc = loc


def what_if_feature_names() -> list[str]:
    """The numbers a what-if payload may set: every feature of the registry and the profile's numbers
    (what ``call_center_v1`` serves, minus its text fields)."""
    from spanishgas.feature_registry import features

    return [f.name for f in features()] + [f for f, kind in PROFILE_FIELDS.items() if kind != "string"]


@dataclass(frozen=True)
class ServedModel:
    """Everything one model version needs to answer."""

    name: str
    version: str
    run_id: str
    churn: ChurnModel
    segments: SegmentModel
    segment_version: str
    metrics: dict[str, float]
    loaded_at: datetime


@dataclass(frozen=True)
class ScoredVector:
    """The part of an answer that depends only on the feature values and the models (what is cached)."""

    churn_probability: float
    risk_tier: str
    above_threshold: bool
    segment: Segment
    reasons: list[ReasonCode]
    recommendation: Recommendation
    agent_notes: AgentNotes
    unknown_features: list[str]
    language: Language


def load_served_model(settings: Settings, alias: str = "champion") -> ServedModel:
    """Load the churn model behind ``alias`` (``champion``, or ``challenger`` to warm its answers ahead)
    and the champion segment model from the registry."""
    from mlflow.exceptions import MlflowException

    from spanishgas.model.registry import CHAMPION, configure, load_version
    from spanishgas.retention.job import SEGMENT_MODEL, load_segments

    client = configure(settings)
    try:
        champion = load_version(settings, alias)
    except MlflowException as exc:
        raise NoModel(
            f"no `{alias}` version of {settings.model.registered_name} is registered yet "
            "(run `spanishgas train` then `spanishgas promote`)"
        ) from exc
    try:
        segment_version = str(client.get_model_version_by_alias(SEGMENT_MODEL, CHAMPION).version)
        segments = load_segments(settings)
    except MlflowException as exc:
        raise NoModel(f"no segment model is registered yet (run `spanishgas segment`): {SEGMENT_MODEL}") from exc
    champion.model.use_threads(1)  # one customer per call (several workers use the cores)
    run = client.get_run(champion.run_id)
    metrics = {k: float(v) for k, v in run.data.metrics.items() if k.startswith("test_")}
    return ServedModel(
        champion.name, champion.version, champion.run_id, champion.model, segments, segment_version, metrics,
        datetime.now(UTC),
    )  # fmt: skip


def online_store_record(settings: Settings) -> dict[str, str] | None:
    """The online store's materialization record (None when there is none, or the store that keeps it,
    Postgres in the stack profile, does not answer: the cache then stays as it is)."""
    from spanishgas.feature_store.offline import materialized_load

    try:
        return materialized_load(settings)
    except Exception as exc:  # the record is an optimization: never let it stop the answers
        log.warning("materialization record unreadable: %s", exc)
        return None


def registered_versions(settings: Settings) -> tuple[str | None, str | None, str | None]:
    """Where ``champion`` points for the churn model and for the segment model, and where ``challenger``
    points for the churn model (None: no such alias)."""
    from mlflow.exceptions import MlflowException

    from spanishgas.model.registry import CHALLENGER, CHAMPION, alias_version, configure
    from spanishgas.retention.job import SEGMENT_MODEL

    churn = alias_version(settings, CHAMPION)
    try:
        segments = str(configure(settings).get_model_version_by_alias(SEGMENT_MODEL, CHAMPION).version)
    except MlflowException:
        segments = None
    return churn, segments, alias_version(settings, CHALLENGER)


class ScoreCache:
    """A bounded least-recently-used map from (model versions, feature vector) to its scored answer."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], ScoredVector] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> ScoredVector | None:
        """The cached answer, or None."""
        if not self.size:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        return key in self._items  # no hit or miss counted: only the warm-up asks this

    def keep_only(self, versions: set[str], segment_version: str, batch: int = 500) -> int:
        """Drop the answers of every churn model version not in ``versions`` or of another segment model
        (no request asks for them any more); returns how many were dropped. Without it each champion move
        would leave a whole cache of an old version's answers in memory until evicted. Freed a batch at a
        time, so the requests waiting for the lock wait for one batch, not for tens of thousands."""
        with self._lock:
            stale = [k for k in self._items if k[0] not in versions or k[1] != segment_version]
        for start in range(0, len(stale), batch):
            with self._lock:
                for key in stale[start : start + batch]:
                    self._items.pop(key, None)
        return len(stale)

    def put(self, key: tuple[Any, ...], value: ScoredVector) -> None:
        """Keep an answer, evicting the least recently used beyond the size."""
        if not self.size:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


# A challenger or a moved champion is warmed behind the serving one in small chunks (scored together,
# 0.1-0.25 ms an answer against 0.8-1.0 ms alone: benchmarks/bench_answer_chunks.py), so each chunk holds
# the interpreter a few milliseconds, pausing three times each chunk's time: about a quarter of a core for
# 30-40 s at full scale, where leaving every answer to the first request that asks cost a whole core for
# minutes (the soak, docs/benchmarks.md).
WARM_BEHIND_CHUNK = 50
WARM_BEHIND_PAUSE = 3.0

# How many answers a refilling cache gains between two freezes: a pass over them alone costs a few
# milliseconds, where a full pass over a whole unfrozen cache stalled requests for 120-215 ms (the soak).
FREEZE_EVERY_ANSWERS = 1000


class RefillFreezer:
    """Keeps the answers a cache gains after a switch out of the garbage collector's full passes.

    Startup and re-warms freeze the whole heap once the cache is full. After a champion move the cache
    fills as agents ask, and every answer (a few dozen Python objects) would sit in the collector's oldest
    generation, whose full passes then grow with the cache. So each time the cache has grown by ``every``
    answers since the last freeze, the objects made since are collected (cyclic garbage is freed, not
    frozen) and the survivors frozen. Growth only: once the cache is full no more freezes happen, so live
    objects that later turn into cyclic garbage can be kept by at most one freeze per ``every`` answers of
    a refill."""

    def __init__(self, every: int = FREEZE_EVERY_ANSWERS) -> None:
        self.every = every
        self.baseline = 0  # the cache's size at the last freeze
        self.freezes = 0

    def frozen_at(self, size: int) -> None:
        """The heap was just frozen (or the cache shrank) with ``size`` answers cached."""
        self.baseline = size

    def cache_grew_to(self, size: int) -> bool:
        """Collect and freeze if the cache gained ``every`` answers since the last freeze; True if it did."""
        if size - self.baseline < self.every:
            return False
        self.baseline = size  # first: a request racing here sees no growth left to freeze
        gc.collect()
        gc.freeze()
        self.freezes += 1
        return True


class ScoringService:
    """Scores customers with the served model and online features; reloads when ``champion`` moves."""

    def __init__(
        self,
        settings: Settings,
        reader: FeatureReader,
        loader: Callable[[str], ServedModel] | None = None,
        versions: Callable[[], tuple[str | None, str | None, str | None]] | None = None,
        observer: Any = None,
        materialized: Callable[[], dict[str, str] | None] | None = None,
    ) -> None:
        from spanishgas.retention.offers import load_policy

        self.settings = settings
        self.reader = reader
        self.policy: Policy = load_policy()
        self._load = loader or (lambda alias: load_served_model(settings, alias))
        self._versions = versions or (lambda: registered_versions(settings))
        self._materialized = materialized or (lambda: online_store_record(settings))
        self.materialization: dict[str, str] | None = None  # the online store's copy the cache was warmed for
        self.rewarms = 0
        self.served: ServedModel | None = None
        self.previous_version: str | None = None  # the champion before the served one (a rollback's target)
        self.challenger_warmed: str | None = None  # the challenger version whose answers are cached
        self._challenger_checked: str | None = None  # the challenger version last considered for warming
        self.last_load_error: str | None = None
        self.cache = ScoreCache(settings.api.explanation_cache_size)
        self.freezer = RefillFreezer()
        self.observer = observer  # metrics hooks (spanishgas.serving.metrics.Metrics) or None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._store_down_until = 0.0  # monotonic time until which reads are refused without trying
        self._store_down_reason = ""
        # Text fields of the profile (segment, province) ride along; everything else is a number.
        self._profile_fields = [f for f, kind in PROFILE_FIELDS.items() if kind == "string" and f in reader.features]
        self._numeric = [f for f in reader.features if f not in self._profile_fields]

    # -- model lifecycle -------------------------------------------------------------------------------

    def load(self) -> bool:
        """Load the registered champion; False (with the reason kept) when there is none yet."""
        from spanishgas.model.registry import CHAMPION

        try:
            served = self._load(CHAMPION)
        except NoModel as exc:
            self.last_load_error = str(exc)
            return False
        missing = self._missing_features(served)
        if missing:
            self.last_load_error = (
                f"model {served.name} v{served.version} (segments v{served.segment_version}) needs features "
                f"the feature service {CALL_CENTER_SERVICE} does not serve: {missing[:5]}"
            )
            log.error(self.last_load_error)
            return False
        # The first version (and the challenger, which the next promotion serves) is warmed before the
        # service is ready. A later one (a moved champion) serves at once and is warmed behind, paced: its
        # answers are usually cached already (it was the challenger, or it is a rollback's target); warming
        # every customer before the switch stalled requests for seconds (the soak, docs/benchmarks.md).
        previous = self.served
        first = previous is None
        if self.settings.api.warm_cache and first:
            try:
                self.materialization = self._materialized()
                self.warm(served)
                self._warm_challenger(served, self._registered_challenger(), pause=0.0)
            except OnlineStoreUnavailable as exc:
                log.warning("cache warm-up skipped: %s", exc)
        self._use(served)
        if previous is not None and previous.version != served.version:
            self.previous_version = previous.version
        self._drop_unwanted_answers(served)
        # The model and tens of thousands of cached answers live as long as the process: keep them out of
        # the garbage collector's full passes, which otherwise stall requests for milliseconds. At start-up
        # (not serving yet) one full collection first; at a switch none: a full pass over the serving heap
        # stalled every request of the worker for hundreds of milliseconds (the soak), and the dropped
        # answers and the previous model are freed by their reference counts.
        if first:
            gc.unfreeze()
            gc.collect()
        gc.freeze()
        self.freezer.frozen_at(len(self.cache))
        if self.settings.api.warm_cache and not first:
            try:
                self.warm(served, WARM_BEHIND_CHUNK, WARM_BEHIND_PAUSE, wanted=lambda: self.served is served)
            except OnlineStoreUnavailable as exc:  # requests fill the rest as they ask
                log.warning("warming the new champion's answers stopped: %s", exc)
        return True

    def _missing_features(self, served: ServedModel) -> list[str]:
        """What ``served`` needs that the feature service does not serve: the churn model's and the segment
        model's inputs, and the two columns the recommendation needs."""
        from spanishgas.retention.scoring import EXPECTED_MARGIN_SOURCE

        needed = [*served.churn.features, *served.segments.features, EXPECTED_MARGIN_SOURCE, "months_to_renewal"]
        return [f for f in dict.fromkeys(needed) if f not in self.reader.features]

    def _registered_challenger(self) -> str | None:
        try:
            return self._versions()[2]
        except Exception as exc:  # only an optimization: the champion serves regardless
            log.warning("challenger alias unreadable: %s", exc)
            return None

    def _warm_challenger(self, champion: ServedModel, version: str | None, pause: float) -> bool:
        """Score every customer with the ``challenger`` version into the cache too (when it is another
        version than the champion and not warmed yet), so promoting it needs no refill. Stops if the
        champion moves meanwhile. True if it warmed."""
        from spanishgas.model.registry import CHALLENGER

        api = self.settings.api
        if not (api.warm_cache and api.warm_challenger and self.cache.size):
            return False
        if version is None or version in (champion.version, self._challenger_checked):
            return False
        self._challenger_checked = version  # once per version, whatever comes of it
        ids = self.reader.customer_ids()
        customers = len(ids)
        if not customers:  # a store that cannot list its customers: nothing to warm
            return False
        self.challenger_warmed = None  # the previous challenger's answers give way to this one's
        if not self._room_for(customers, champion):
            log.warning(
                "challenger v%s not warmed: the answer cache (%d) cannot hold two versions of %d customers",
                version, self.cache.size, customers,
            )  # fmt: skip
            return False
        try:
            challenger = self._load(CHALLENGER)
        except NoModel:
            return False
        if challenger.segment_version != champion.segment_version or self._missing_features(challenger):
            return False  # answers it could never serve under this segment model or feature service
        wanted = (lambda: self.served is champion) if pause else None  # at start-up nothing serves yet
        self.warm(challenger, WARM_BEHIND_CHUNK if pause else 2000, pause, wanted=wanted, ids=ids)
        self.challenger_warmed = challenger.version
        self._drop_unwanted_answers(champion)
        return True

    def _room_for(self, customers: int, champion: ServedModel) -> bool:
        """Whether another version's answers fit beside the champion's without evicting them; the previous
        champion's (a rollback's target) give way first."""
        if len(self.cache) + customers <= self.cache.size:
            return True
        if customers * 2 > self.cache.size:
            return False
        self.previous_version = None
        self._drop_unwanted_answers(champion)
        return len(self.cache) + customers <= self.cache.size

    def _drop_unwanted_answers(self, served: ServedModel) -> None:
        """Keep the answers of the champion, the champion before it and the warmed challenger."""
        keep = {served.version, self.previous_version, self.challenger_warmed} - {None}
        dropped = self.cache.keep_only(keep, served.segment_version)  # type: ignore[arg-type]
        if dropped:
            log.info("dropped %d cached answers of versions no alias points to", dropped)

    def _use(self, served: ServedModel) -> None:
        # One attribute assignment: requests in flight keep the model they started with.
        self.served = served
        self.last_load_error = None
        if self.observer is not None:
            self.observer.model_loaded(served)
        log.info("serving %s v%s (segments v%s)", served.name, served.version, served.segment_version)

    def refresh(self) -> bool:
        """Load the champion again if its alias (or the segment model's) moved; True if it changed. When
        the model stays but the online store was materialized again, warm the answers for its new
        features (the old ones stay cached until evicted, but no request asks for them any more); when
        the challenger moved, warm its answers behind, paced."""
        churn, segments, challenger = self._versions()
        if self.observer is not None:
            self.observer.registry_checked(churn)
        current = self.served
        if churn is None or segments is None:
            return False
        if current is not None and (churn, segments) == (current.version, current.segment_version):
            self.rewarm_if_materialized(current)
            try:
                self._warm_challenger(current, challenger, pause=WARM_BEHIND_PAUSE)
            except OnlineStoreUnavailable as exc:
                log.warning("warming the challenger's answers stopped: %s", exc)
            return False
        return self.load()

    def rewarm_if_materialized(self, served: ServedModel) -> bool:
        """Warm the cache again when the online store's materialization record moved; True if it did.

        Requests go on meanwhile: an answer's cache key is its feature vector, so a request for features
        not warmed yet is computed, never answered from the older features."""
        if not (self.settings.api.warm_cache and self.cache.size):
            return False
        record = self._materialized()
        if record is None or record == self.materialization:
            return False
        log.info("online store materialized again (%s): warming the answers for its features", record)
        try:
            # flat out: every request misses until its customer is warmed, so a paced re-warm (tried: a third
            # of the time computing) only lengthened the slow window (docs/benchmarks.md)
            self.warm(served)
        except OnlineStoreUnavailable as exc:
            log.warning("cache re-warm skipped: %s", exc)
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()  # as after a load: the new answers stay out of the collector's full passes
        self.freezer.frozen_at(len(self.cache))
        self._challenger_checked = None  # the next check warms the challenger for the new features, paced
        self.materialization = record
        self.rewarms += 1
        return True

    def start_watching(self) -> None:
        """Check the registry every ``reload_interval_s`` in a background thread."""
        if self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        """Stop the background check."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.api.reload_interval_s):
            try:
                self.refresh()
            except Exception as exc:  # keep serving the loaded model whatever the registry does
                self.last_load_error = f"registry check failed: {type(exc).__name__}: {exc}"
                log.warning(self.last_load_error)

    def require_model(self) -> ServedModel:
        """The served model, or :class:`NoModel` saying why there is none."""
        served = self.served
        if served is None:
            raise NoModel(self.last_load_error or "no model is loaded yet")
        return served

    def model_info(self) -> ModelInfo:
        """What is being served."""
        served = self.require_model()
        return ModelInfo(
            name=served.name,
            version=served.version,
            alias="champion",
            run_id=served.run_id,
            feature_service=CALL_CENTER_SERVICE,
            features=len(served.churn.features),
            threshold=served.churn.threshold,
            risk_tiers=served.churn.risk_tiers,
            metrics=served.metrics,
            segment_model_version=served.segment_version,
            loaded_at=served.loaded_at,
        )

    def readiness(self) -> tuple[bool, str | None]:
        """Ready when a model is loaded and the online store answers; otherwise why not."""
        if self.served is None:
            return False, self.last_load_error or "no model is loaded yet"
        try:
            self.reader.ping()
        except OnlineStoreUnavailable as exc:
            return False, str(exc)
        return True, None

    # -- scoring ---------------------------------------------------------------------------------------

    def language(self, lang: Language | None) -> Language:
        """The language asked for, else the settings' default."""
        return lang or self.settings.retention.language

    def score_customer(self, customer_id: str, lang: Language | None = None) -> ScoreResponse:
        """Latest online features of a customer, scored, explained and with the recommended action."""
        scores, missing = self.score_customers([customer_id], lang)
        if missing:
            raise CustomerNotFound(f"customer {customer_id} has no features in the online store")
        return scores[0]

    def score_customers(
        self, customer_ids: list[str], lang: Language | None = None
    ) -> tuple[list[ScoreResponse], list[str]]:
        """Scores of the customers the store knows (in the order asked) and the ids it does not know."""
        served = self.require_model()
        lang = self.language(lang)
        limit = self.settings.api.batch_max_customers
        if len(customer_ids) > limit:
            raise InvalidFeatures(
                f"at most {limit} customers per call, got {len(customer_ids)}", ("body", "customer_ids")
            )
        vectors = self._read(list(dict.fromkeys(customer_ids)))
        found = [v for v in vectors if v.found]
        scored = self._scored(served, found, lang)
        answers = [
            self._answer(served, v.customer_id, s, v.event_timestamp) for v, s in zip(found, scored, strict=True)
        ]
        return answers, [v.customer_id for v in vectors if not v.found]

    def score_what_if(
        self, customer_id: str | None, features: dict[str, float | None], lang: Language | None = None
    ) -> ScoreResponse:
        """Score changed features: the customer's online vector with ``features`` replacing values, or
        ``features`` alone when no customer is given (features left out are unknown to the model, and
        the answer lists them)."""
        served = self.require_model()
        unknown = sorted(set(features) - set(self._numeric))
        if unknown:
            raise InvalidFeatures(f"unknown features: {unknown[:10]}", ("body", "features", unknown[0]))
        timestamp = None
        if customer_id is not None:
            vector = self._read([customer_id])[0]
            if not vector.found:
                raise CustomerNotFound(f"customer {customer_id} has no features in the online store")
            values, timestamp = {**vector.values, **features}, vector.event_timestamp
        else:
            values = {f: features.get(f) for f in self._numeric} | {f: None for f in self._profile_fields}
        scored = self._compute(served, [values], self.language(lang))[0]
        answer = self._answer(served, customer_id, scored, timestamp)
        return answer.model_copy(update={"what_if": True})

    def _read(self, customer_ids: list[str]) -> list[OnlineVector]:
        # The route runs on the event loop: while the store is down, only one request per back-off
        # period waits for the timeout; the others are refused at once instead of queueing behind it.
        if time.monotonic() < self._store_down_until:
            raise OnlineStoreUnavailable(f"{self._store_down_reason}; not retried for a moment")
        started = time.perf_counter()
        try:
            return self.reader.read(customer_ids)
        except OnlineStoreUnavailable as exc:
            self._store_down_until = time.monotonic() + self.settings.api.online_store_backoff_s
            self._store_down_reason = str(exc)
            log.warning("online store read failed: %s", exc, exc_info=exc.__cause__)
            if self.observer is not None:
                self.observer.online_store_error()
            raise
        finally:
            if self.observer is not None:
                self.observer.feature_fetch(time.perf_counter() - started)

    def _scored(self, served: ServedModel, vectors: list[OnlineVector], lang: Language) -> list[ScoredVector]:
        """Scored answers for online vectors, from the cache where the same vector was scored before."""
        keys = [(served.version, served.segment_version, lang, v.fingerprint) for v in vectors]
        out: list[ScoredVector | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, s in enumerate(out) if s is None]
        if self.observer is not None:
            self.observer.cache(hits=len(vectors) - len(todo), misses=len(todo))
        if todo:
            for i, s in zip(todo, self._compute(served, [vectors[i].values for i in todo], lang), strict=True):
                out[i] = s
                self.cache.put(keys[i], s)
            self.freezer.cache_grew_to(len(self.cache))
        return out  # type: ignore[return-value]

    def warm(
        self,
        served: ServedModel,
        chunk: int = 2000,
        pause: float = 0.0,
        wanted: Callable[[], bool] | None = None,
        ids: list[str] | None = None,
    ) -> int:
        """Score every customer the online store lists with ``served`` into the cache, many rows per
        model call (the same functions, so the same answers as one at a time). Returns how many.

        With ``pause``, sleep that many times each chunk's time after it (a warm beside the requests):
        answers already cached are skipped and the answers are frozen as they accumulate. The warm
        stops when ``wanted`` (checked before each chunk) turns false. ``ids``: the store's customers when
        the caller listed them already."""
        if not self.cache.size:
            return 0
        started = time.perf_counter()
        ids = (self.reader.customer_ids() if ids is None else ids)[: self.cache.size]
        lang = self.language(None)  # the language most answers are asked in
        warmed = 0
        for start in range(0, len(ids), chunk):
            if wanted is not None and not wanted():
                log.info("champion moved meanwhile: warming v%s stops at %d answers", served.version, warmed)
                break
            chunk_started = time.perf_counter()
            warmed += self._warm_chunk(served, ids[start : start + chunk], lang, skip_cached=bool(pause))
            if pause:
                self.freezer.cache_grew_to(len(self.cache))
                time.sleep(pause * (time.perf_counter() - chunk_started))
        if ids:
            log.info("scored %d customers into the cache in %.1f s", warmed, time.perf_counter() - started)
        return warmed

    def _warm_chunk(self, served: ServedModel, ids: list[str], lang: Language, skip_cached: bool) -> int:
        from spanishgas.retention.offers import GuardrailViolation

        def key(v: OnlineVector) -> tuple[Any, ...]:
            return (served.version, served.segment_version, lang, v.fingerprint)

        vectors = [v for v in self.reader.read(ids) if v.found and not (skip_cached and key(v) in self.cache)]
        if not vectors:
            return 0
        try:
            scored = self._compute(served, [v.values for v in vectors], lang, observe=False)
        except GuardrailViolation as exc:  # leave these to be scored (and refused) one by one
            log.warning("cache warm-up skipped %d customers: %s", len(vectors), exc)
            return 0
        for v, answer in zip(vectors, scored, strict=True):
            self.cache.put(key(v), answer)
        return len(vectors)

    def _compute(
        self, served: ServedModel, rows: list[dict[str, Any]], lang: Language, observe: bool = True
    ) -> list[ScoredVector]:
        """Score, explain, segment and recommend feature rows with the batch job's array functions (no
        DataFrame: building one costs more than scoring a customer)."""
        from spanishgas.retention.scoring import (
            EXPECTED_MARGIN_SOURCE,
            recommend_best_arrays,
            score_matrix,
            segment_matrix,
        )
        from spanishgas.retention.why import FREE_ACTION_FEATURES

        started = time.perf_counter()
        x = np.array(
            [[np.nan if row.get(f) is None else row[f] for f in self._numeric] for row in rows], dtype="float64"
        )
        column = {f: j for j, f in enumerate(self._numeric)}
        churn, segments = served.churn, served.segments
        model_columns = x[:, [column[f] for f in churn.features]]
        scores = score_matrix(churn, model_columns, self.settings.api.top_reasons, lang)
        segs = segment_matrix(segments, x[:, [column[f] for f in segments.features]])
        margin = x[:, column[EXPECTED_MARGIN_SOURCE]]
        context = {f: x[:, column[f]] for f in ("months_to_renewal", *FREE_ACTION_FEATURES) if f in column}
        plan, decisions = recommend_best_arrays(
            scores["churn_probability"], scores["risk_tier"], margin, segs["segment_archetype"],
            scores["reason_count"], {}, context, self.policy,
        )  # fmt: skip
        if observe and self.observer is not None:
            self.observer.model_time(time.perf_counter() - started)
        out = []
        for i, row in enumerate(rows):
            missing = np.flatnonzero(np.isnan(model_columns[i]))
            words = decisions[i].rendered(lang)
            out.append(
                ScoredVector(
                    churn_probability=float(scores["churn_probability"][i]),
                    risk_tier=str(scores["risk_tier"][i]),
                    above_threshold=bool(scores["above_threshold"][i]),
                    segment=Segment(
                        id=int(segs["segment_id"][i]),
                        name=str(segs["segment_name"][i]),
                        archetype=str(segs["segment_archetype"][i]),
                        customer_segment=row.get("segment"),
                    ),
                    reasons=[
                        ReasonCode(
                            phrase=r.phrase, feature=r.feature, value=_finite(r.value), contribution=r.contribution
                        )
                        for r in scores["reasons"][i]
                    ],
                    recommendation=Recommendation(
                        action=str(plan["action"][i]),
                        timing=str(plan["timing_window"][i]),
                        offer_cost_eur=float(plan["offer_cost_eur"][i]),
                        expected_margin_impact_eur=float(plan["expected_margin_impact_eur"][i]),
                        expected_monthly_loss_eur=float(plan["expected_monthly_loss_eur"][i]),
                        rule=words["rule"],
                        why=words["why"],
                        also=words["also"],
                        free_actions=words["free_actions"],
                    ),
                    agent_notes=AgentNotes(
                        monthly_margin_eur=decisions[i].figures["monthly_margin_eur"],
                        margin_at_risk_eur=round(float(plan["expected_monthly_loss_eur"][i]), 2),
                        notes=words["agent_notes"],
                    ),
                    unknown_features=[churn.features[j] for j in missing],
                    language=lang,
                )
            )
        return out

    def _answer(
        self, served: ServedModel, customer_id: str | None, scored: ScoredVector, timestamp: datetime | None
    ) -> ScoreResponse:
        if self.observer is not None:
            self.observer.prediction(scored.risk_tier, served.version)
        return ScoreResponse(
            customer_id=customer_id,
            churn_probability=scored.churn_probability,
            risk_tier=scored.risk_tier,  # type: ignore[arg-type]
            above_threshold=scored.above_threshold,
            segment=scored.segment,
            reasons=scored.reasons,
            recommendation=scored.recommendation,
            agent_notes=scored.agent_notes,
            language=scored.language,
            model=ModelRef(name=served.name, version=served.version),
            feature_timestamp=timestamp,
            unknown_features=scored.unknown_features,
        )


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
