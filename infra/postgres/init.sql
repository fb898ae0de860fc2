-- Run once by the postgres image on an empty data volume: the MLflow tracking server's backend store.
-- (The feature store and the scores table create their own databases on first use.)
CREATE DATABASE mlflow;
