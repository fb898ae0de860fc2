"""One feature view per feature tier plus the customer profile (tiers from resources/features.yaml)."""

from datetime import timedelta

from data_sources import customer_features_asof
from entities import customer

from spanishgas.feature_store.definitions import feature_views
from spanishgas.settings import get_settings

_views = feature_views(customer, customer_features_asof, timedelta(days=get_settings().feast.ttl_days))
customer_lifecycle = _views["customer_lifecycle"]
customer_market = _views["customer_market"]
customer_risk = _views["customer_risk"]
customer_behaviour = _views["customer_behaviour"]
customer_sentiment = _views["customer_sentiment"]
customer_compound = _views["customer_compound"]
customer_profile = _views["customer_profile"]
