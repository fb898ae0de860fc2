#!/usr/bin/env bash
# One-shot init of the stack's Airflow (docker-compose.yml `airflow-init`, the Helm chart's migrate job runs
# the first line alone): migrate the metadata database, then create the connection the medallion DAG
# submits its Spark jobs through, pointed at the stack's master. Safe to run again: both steps are
# idempotent (`--overwrite` replaces a connection changed by hand with the stack's).
set -euo pipefail
airflow db migrate
master="${SPANISHGAS_SPARK__MASTER:-spark://spark-master:7077}"
conn_id="${SPANISHGAS_ORCHESTRATION__SPARK_CONN_ID:-spark_default}"
file="$(mktemp --suffix=.json)"
trap 'rm -f "$file"' EXIT
printf '{"%s": {"conn_type": "spark", "host": "%s"}}\n' "$conn_id" "$master" > "$file"
airflow connections import --overwrite "$file"
