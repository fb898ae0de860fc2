"""Reading a customer's latest features from the online store for the scoring API.

Two readers return the same vectors:

* :class:`FeastReader` goes through the Feast SDK (``get_online_features``); it works with every online
  store, so it serves the local profile (SQLite).
* :class:`RedisReader` reads the hash Feast's Redis online store writes, in one ``HMGET`` per customer,
  with Feast's own key and field encodings. The SDK spends about 2 ms a call in Python building its
  response for the 76 features the API needed when measured (79 now); this reader needs a tenth of that
  (docs/benchmarks.md).
  A parity test against the SDK guards the encoding across Feast upgrades.

Both raise :class:`OnlineStoreUnavailable` when the store fails. The Redis reader also bounds every
read by the configured timeout, so the API can answer 503 instead of hanging; the Feast SDK offers no
such bound, so with the SDK reader a hung store holds the request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from spanishgas.errors import PlatformError
from spanishgas.feature_store.definitions import CALL_CENTER_SERVICE, JOIN_KEY

if TYPE_CHECKING:
    from feast import FeatureStore

    from spanishgas.settings import Settings


class OnlineStoreUnavailable(PlatformError, RuntimeError):
    """The online store did not answer (down, or slower than the timeout)."""


class OnlineVector:
    """One customer's latest features: values by name (None where the store has none), the time of the
    newest snapshot any view holds for them (None when the store knows nothing of the customer), and a
    fingerprint that is equal for equal vectors (the scored-answer cache's key). Values are decoded on
    first use, so a cached answer needs no decoding at all."""

    __slots__ = ("_decode", "_values", "customer_id", "event_timestamp", "fingerprint")

    def __init__(
        self,
        customer_id: str,
        event_timestamp: datetime | None,
        fingerprint: tuple[Any, ...],
        values: dict[str, Any] | None = None,
        decode: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.event_timestamp = event_timestamp
        self.fingerprint = fingerprint
        self._values = values
        self._decode = decode

    @property
    def values(self) -> dict[str, Any]:
        """Feature values by name."""
        if self._values is None:
            assert self._decode is not None
            self._values = self._decode()
        return self._values

    @property
    def found(self) -> bool:
        """Whether the store holds any feature of this customer."""
        return self.event_timestamp is not None


class FeatureReader(Protocol):
    """What the scoring service needs from an online store."""

    features: list[str]

    def read(self, customer_ids: list[str]) -> list[OnlineVector]:
        """Latest vectors, in the order asked."""
        ...

    def ping(self) -> None:
        """Raise :class:`OnlineStoreUnavailable` unless the store answers."""
        ...

    def customer_ids(self) -> list[str]:
        """Every customer the store holds (empty when the store cannot list them)."""
        ...


def service_views(store: FeatureStore, service: str) -> list[tuple[str, list[str]]]:
    """(view name, feature names) of each view a feature service reads, in the service's order."""
    feature_service = store.get_feature_service(service)
    # Redis fields are keyed by the view's own name (Feast's view versioning is not enabled here).
    return [(p.name, [f.name for f in p.features]) for p in feature_service.feature_view_projections]


class FeastReader:
    """Online vectors through the Feast SDK (any online store)."""

    def __init__(self, store: FeatureStore, service: str = CALL_CENTER_SERVICE) -> None:
        self.store = store
        self.service = service
        self._feature_service = store.get_feature_service(service)
        self.views = service_views(store, service)
        self.features = [f for _, names in self.views for f in names]

    def read(self, customer_ids: list[str]) -> list[OnlineVector]:
        """Latest vectors, in the order asked."""
        try:
            response = self.store.get_online_features(
                features=self._feature_service, entity_rows=[{JOIN_KEY: c} for c in customer_ids]
            )
        except Exception as exc:  # the SDK wraps store errors in many types; all mean the same to a caller
            raise OnlineStoreUnavailable(f"online store read failed: {type(exc).__name__}") from exc
        proto = response.proto
        names = list(proto.metadata.feature_names.val)
        columns = {name: proto.results[i] for i, name in enumerate(names)}
        out = []
        for row, customer_id in enumerate(customer_ids):
            values: dict[str, Any] = {}
            newest: datetime | None = None
            for name in self.features:
                result = columns[name]
                values[name] = _python_value(result.values[row])
                # PRESENT = 1 in Feast's FieldStatus; timestamps are per view but repeated per feature. The
                # Redis store reports unknown entities as present at the epoch: not a snapshot either.
                stamp = result.event_timestamps[row]
                if result.statuses[row] == 1 and stamp.seconds > 0:
                    ts = stamp.ToDatetime(tzinfo=UTC)
                    newest = ts if newest is None or ts > newest else newest
            fingerprint = tuple(None if v is None or v != v else v for v in values.values())  # NaN -> None
            out.append(OnlineVector(customer_id, newest, fingerprint, values=values))
        return out

    def ping(self) -> None:
        """Read an id no customer has: answers only if the store does."""
        self.read(["__ping__"])

    def customer_ids(self) -> list[str]:
        """The SDK cannot list an online store's entities."""
        return []


class RedisReader:
    """Online vectors straight from the hash Feast's Redis store keeps per customer."""

    def __init__(
        self,
        client: Any,
        project: str,
        views: list[tuple[str, list[str]]],
        entity_key_serialization_version: int,
    ) -> None:
        from feast.infra.online_stores.helpers import _mmh3

        self.client = client
        self.project = project
        self.views = views
        self.version = entity_key_serialization_version
        self.features = [f for _, names in views for f in names]
        # Feast stores each feature under murmur3("view:feature") and each view's event time under "_ts:view".
        self._fields: list[bytes | str] = [_mmh3(f"{view}:{name}") for view, names in views for name in names]
        self._fields += [f"_ts:{view}" for view, _ in views]

    @classmethod
    def from_store(cls, store: FeatureStore, settings: Settings, service: str = CALL_CENTER_SERVICE) -> RedisReader:
        """A reader for the Redis server of ``settings``, with timeouts from the API settings."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        r = settings.redis
        timeout = settings.api.online_store_timeout_s
        client = redis.Redis(
            host=r.host,
            port=r.port,
            db=r.db,
            password=r.password.get_secret_value() or None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate reconnect on a broken connection (a restarted Redis leaves stale pooled
            # sockets), none on a timeout: a slow store costs one timeout, then the API answers 503.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        return cls(client, store.project, service_views(store, service), store.config.entity_key_serialization_version)

    def key(self, customer_id: str) -> bytes:
        """The Redis key Feast writes for a customer of this project."""
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        entity = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=customer_id)])
        return serialize_entity_key(entity, entity_key_serialization_version=self.version) + self.project.encode()

    def read(self, customer_ids: list[str]) -> list[OnlineVector]:
        """Latest vectors, in the order asked (one pipelined round trip)."""
        import redis

        try:
            if len(customer_ids) == 1:
                replies = [self.client.hmget(self.key(customer_ids[0]), self._fields)]
            else:
                with self.client.pipeline(transaction=False) as pipe:
                    for customer_id in customer_ids:
                        pipe.hmget(self.key(customer_id), self._fields)
                    replies = pipe.execute()
        except redis.RedisError as exc:
            raise OnlineStoreUnavailable(f"Redis online store unavailable: {type(exc).__name__}") from exc
        return [self._decode(c, reply) for c, reply in zip(customer_ids, replies, strict=True)]

    def _decode(self, customer_id: str, reply: list[bytes | None]) -> OnlineVector:
        from google.protobuf.timestamp_pb2 import Timestamp

        n = len(self.features)
        newest: datetime | None = None
        for raw_ts in reply[n:]:
            if raw_ts is not None:
                ts = Timestamp.FromString(raw_ts).ToDatetime(tzinfo=UTC)
                newest = ts if newest is None or ts > newest else newest
        # The raw bytes identify the vector exactly: equal bytes, equal features.
        return OnlineVector(customer_id, newest, tuple(reply), decode=lambda: self._values(reply))

    def _values(self, reply: list[bytes | None]) -> dict[str, Any]:
        from feast.protos.feast.types.Value_pb2 import Value

        n = len(self.features)
        values: dict[str, Any] = {}
        position = 0
        for v, (_, names) in enumerate(self.views):
            present = reply[n + v] is not None
            for name in names:
                raw = reply[position]
                values[name] = _python_value(Value.FromString(raw)) if present and raw is not None else None
                position += 1
        return values

    def customer_ids(self) -> list[str]:
        """Every customer with a hash of this project (SCAN, so Redis keeps serving meanwhile)."""
        import redis
        from feast.infra.key_encoding_utils import deserialize_entity_key

        suffix = self.project.encode()
        ids: list[str] = []
        try:
            for key in self.client.scan_iter(match=b"*" + suffix, count=5000):
                try:
                    entity = deserialize_entity_key(key[: -len(suffix)], entity_key_serialization_version=self.version)
                except Exception:  # another project's key that happens to end the same way
                    continue
                if list(entity.join_keys) == [JOIN_KEY]:
                    ids.append(entity.entity_values[0].string_val)
        except redis.RedisError as exc:
            raise OnlineStoreUnavailable(f"Redis online store unavailable: {type(exc).__name__}") from exc
        return sorted(ids)

    def ping(self) -> None:
        """Raise unless Redis answers a PING within the timeout."""
        import redis

        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise OnlineStoreUnavailable(f"Redis online store unavailable: {type(exc).__name__}") from exc


def _python_value(value: Any) -> Any:
    """A Feast ``Value`` proto as a plain Python value (None when unset)."""
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    return getattr(value, kind)


def reader_for(settings: Settings, store: FeatureStore) -> FeatureReader:
    """The fastest reader the profile allows: Redis directly in the stack, the SDK otherwise."""
    choice = settings.api.feature_reader
    if choice == "auto":
        choice = "redis" if settings.profile == "stack" else "feast"
    if choice == "redis":
        return RedisReader.from_store(store, settings)
    return FeastReader(store)
