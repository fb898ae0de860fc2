"""Gold customer_features_asof in the profile's offline store (Parquet file locally, Postgres in the stack)."""

from spanishgas.feature_store.definitions import customer_features_source
from spanishgas.settings import get_settings

customer_features_asof = customer_features_source(get_settings())
