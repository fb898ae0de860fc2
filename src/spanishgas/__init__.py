"""SpanishGas churn-and-retention platform: the library behind every job, DAG, API route and page."""

__version__ = "0.1.0"
