"""Model and data monitoring: feature and prediction drift against each model's frozen reference,
delayed-label performance of matured scoring runs, data-quality trends, the plans' business view, and
the retraining decision (docs/monitoring.md)."""
