"""What the Airflow DAGs call: deliveries in the landing folder, the landing sensor, the Assets, and the
lifecycle's tasks as plain functions (docs/orchestration.md). Airflow is imported only by the modules
that need it (``assets``, ``sensors``), never by the rest of the library."""
