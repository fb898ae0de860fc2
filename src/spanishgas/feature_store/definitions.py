"""Feast objects of the platform: the customer entity, the gold features source, one feature view per
feature tier and one feature service per model feature set.

The feature list, tiers and meanings come from ``resources/features.yaml`` and the experiment sets from
``resources/experiments.yaml``, so the feature store, the documentation and the model read one
definition. ``feature_repo/*.py`` expose these objects to the ``feast`` CLI; the platform applies the
same objects through :func:`spanishgas.feature_store.store.apply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from spanishgas.feature_registry import TIERS, experiments, features

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    from spanishgas.settings import Settings

ENTITY_NAME = "customer"
JOIN_KEY = "customer_id"
SOURCE_NAME = "customer_features_asof"
TIMESTAMP_FIELD = "event_timestamp"
CREATED_FIELD = "created_timestamp"
PROFILE_VIEW = "customer_profile"
MODEL_SERVICE = "churn_model_v1"
CALL_CENTER_SERVICE = "call_center_v1"
# Not model inputs, but what an agent and the offer logic need about the customer.
PROFILE_FIELDS = {"segment": "string", "province_code": "string", "revenue_avg_12m": "double"}


def tier_view_name(tier: str) -> str:
    """Feature view of one tier, e.g. ``customer_lifecycle``."""
    return f"customer_{tier}"


def experiment_service_name(experiment: str) -> str:
    """Feature service of an experiment set, e.g. ``churn_e3_v1``."""
    return f"churn_{experiment.lower()}_v1"


def customer_entity() -> Entity:
    """The customer, keyed by the utility's customer id."""
    from feast import Entity, ValueType

    return Entity(
        name=ENTITY_NAME,
        join_keys=[JOIN_KEY],
        value_type=ValueType.STRING,
        description="A SpanishGas customer (one supply contract holder)",
    )


def customer_features_source(settings: Settings) -> DataSource:
    """Gold's ``customer_features_asof`` as loaded into the profile's offline store."""
    description = "Gold customer_features_asof: one row per customer and monthly as-of date"
    if settings.profile == "local":
        from feast import FileSource

        from spanishgas.feature_store.offline import local_features_path

        return FileSource(
            name=SOURCE_NAME,
            path=str(local_features_path(settings).resolve()),
            timestamp_field=TIMESTAMP_FIELD,
            created_timestamp_column=CREATED_FIELD,
            description=description,
        )
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

    return PostgreSQLSource(
        name=SOURCE_NAME,
        table=settings.feast.offline_table,
        timestamp_field=TIMESTAMP_FIELD,
        created_timestamp_column=CREATED_FIELD,
        description=description,
    )


def feature_views(entity: Entity, source: DataSource, ttl: timedelta) -> dict[str, FeatureView]:
    """One view per feature tier, plus the customer profile view, by name."""
    from feast import FeatureView, Field
    from feast.types import Float64, String

    views: dict[str, FeatureView] = {}
    for tier in TIERS:
        name = tier_view_name(tier)
        views[name] = FeatureView(
            name=name,
            entities=[entity],
            ttl=ttl,
            schema=[Field(name=f.name, dtype=Float64, description=f.meaning) for f in features() if f.tier == tier],
            source=source,
            online=True,
            description=f"{tier} features of a customer as of a monthly date (docs/features.md)",
            tags={"tier": tier},
        )
    types = {"string": String, "double": Float64}
    views[PROFILE_VIEW] = FeatureView(
        name=PROFILE_VIEW,
        entities=[entity],
        ttl=ttl,
        schema=[Field(name=n, dtype=types[t]) for n, t in PROFILE_FIELDS.items()],
        source=source,
        online=True,
        description="segment, province and revenue: context for agents and offers, not a model input",
        tags={"tier": "profile"},
    )
    return views


def feature_services(views: dict[str, FeatureView]) -> list[FeatureService]:
    """A versioned service per model feature set: the full model, each experiment set, the call center."""
    from feast import FeatureService

    def tiers_of(tiers: list[str]) -> list[FeatureView]:
        return [views[tier_view_name(t)] for t in TIERS if t in tiers]

    services = [
        FeatureService(
            name=MODEL_SERVICE,
            features=tiers_of(list(TIERS)),
            description="Features of the churn model (every tier; experiment E5)",
            tags={"experiment": "E5"},
        ),
        FeatureService(
            name=CALL_CENTER_SERVICE,
            features=[*tiers_of(list(TIERS)), views[PROFILE_VIEW]],
            description="What the scoring API reads: the model's features plus the customer profile",
        ),
    ]
    for name, spec in experiments().items():
        services.append(
            FeatureService(
                name=experiment_service_name(name),
                features=tiers_of(list(spec["tiers"])),  # type: ignore[arg-type]
                description=f"Experiment {name}: {spec['description']}",
                tags={"experiment": name},
            )
        )
    return services


@dataclass(frozen=True)
class Definitions:
    """Every Feast object the platform applies."""

    entity: Entity
    source: DataSource
    views: dict[str, FeatureView]
    services: list[FeatureService]

    def objects(self) -> list[object]:
        """In the order ``FeatureStore.apply`` accepts them."""
        return [self.entity, self.source, *self.views.values(), *self.services]


def build_definitions(settings: Settings) -> Definitions:
    """The platform's Feast objects for the profile of ``settings``."""
    entity = customer_entity()
    source = customer_features_source(settings)
    views = feature_views(entity, source, timedelta(days=settings.feast.ttl_days))
    return Definitions(entity, source, views, feature_services(views))
