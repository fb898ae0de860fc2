"""Versioned feature services: churn_model_v1, call_center_v1 and one per experiment set (E0-E8)."""

from feature_views import _views

from spanishgas.feature_store.definitions import feature_services

for _service in feature_services(_views):
    globals()[_service.name] = _service
