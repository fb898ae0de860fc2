"""The churn model: time-aware training, tuning, calibration, evaluation and the MLflow registry."""
