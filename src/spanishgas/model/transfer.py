"""A registered version moved from one environment's registry to another's (staging's to production's).

What moves is the whole training run: its parameters, metrics and tags, every artifact (the monitoring
reference, the test rows' scores, the model card, the plots) and the model itself, registered again here as
a new version named ``challenger``, tagged with where it came from. Whether it serves is this registry's
own decision: ``spanishgas promote`` judges it with the same gate on this environment's forward test rows
and records the decision here (docs/deployment.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.pyfunc

from spanishgas.model.registry import (
    CHAMPION,
    EXPERIMENT,
    configure,
    experiment_id,
    log_decision,
    name_challenger,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from spanishgas.settings import Settings

# Tags on the new run and version naming the registry, version and run it came from.
SOURCE_REGISTRY, SOURCE_VERSION, SOURCE_RUN = "imported_from_registry", "imported_from_version", "imported_from_run"


@dataclass
class ImportedVersion:
    """A version copied in: where from, and what it is here."""

    source_registry: str
    source_version: str
    version: str
    run_id: str


def _source_version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    """The version asked for, or the source's champion."""
    if version:
        return client.get_model_version(name, version)
    return client.get_model_version_by_alias(name, CHAMPION)


def import_version(settings: Settings, source_registry: str, version: str | None = None) -> ImportedVersion:
    """Copy ``version`` (default: the champion) of the churn model from ``source_registry`` into this
    environment's registry as a new version named challenger; the registry's gate decides the rest."""
    from mlflow.tracking import MlflowClient

    name = settings.model.registered_name
    source = MlflowClient(tracking_uri=source_registry, registry_uri=source_registry)
    found = _source_version(source, name, version)
    run = source.get_run(str(found.run_id))
    with tempfile.TemporaryDirectory() as tmp:
        # the model through the source's registry, then the run's own artifacts beside it
        mlflow.set_tracking_uri(source_registry)
        mlflow.set_registry_uri(source_registry)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{found.version}")
        artifacts = Path(source.download_artifacts(str(found.run_id), "", tmp))
        client = configure(settings)  # from here on, this environment's tracking server and registry
        origin = {SOURCE_REGISTRY: source_registry, SOURCE_VERSION: str(found.version), SOURCE_RUN: run.info.run_id}
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        with mlflow.start_run(experiment_id=experiment_id(settings, client, EXPERIMENT), run_name="imported") as copy:
            mlflow.set_tags({**tags, **origin})
            mlflow.log_params(run.data.params)
            mlflow.log_metrics(run.data.metrics)
            mlflow.log_artifacts(str(artifacts))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc.unwrap_python_model(),
                signature=pyfunc.metadata.signature,
                input_example=pyfunc.input_example,
                registered_model_name=name,
            )
    new_version = str(info.registered_model_version)
    for key, value in {**found.tags, **origin}.items():
        client.set_model_version_tag(name, new_version, key, value)
    name_challenger(settings, new_version)  # last: an import stopped before it named nothing
    imported = ImportedVersion(source_registry, str(found.version), new_version, copy.info.run_id)
    log_decision(settings, client, "import", asdict(imported))
    return imported
