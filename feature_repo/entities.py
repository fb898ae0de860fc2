"""The customer entity (definitions live in spanishgas.feature_store.definitions)."""

from spanishgas.feature_store.definitions import customer_entity

customer = customer_entity()
