#!/usr/bin/env bash
# Airflow on this machine for a data engineer: the platform's DAGs, all four services (api-server,
# scheduler, dag-processor, triggerer) in one `airflow standalone` process, SQLite metadata under .airflow/,
# and `spark_default` submitting to local[*]. The UI is on http://127.0.0.1:8080; the admin password is
# printed on start and kept in .airflow/simple_auth_manager_passwords.json.generated.
# Settings already in the environment win (a cluster master, another home).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$HERE/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$HERE/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW_CONN_SPARK_DEFAULT="${AIRFLOW_CONN_SPARK_DEFAULT:-{\"conn_type\": \"spark\", \"host\": \"local[*]\"\}}"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
cd "$HERE"
exec "$HERE/.venv/bin/airflow" standalone
