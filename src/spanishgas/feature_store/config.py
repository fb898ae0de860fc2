"""Feast's repo configuration, read from ``feature_repo/feature_store[.stack].yaml`` with its
``${VARIABLES}`` filled from the platform settings.

The YAML files are the one configuration: the platform fills them from :class:`Settings`, and a person
using the ``feast`` CLI fills them from the environment that ``spanishgas features env`` prints.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from spanishgas.errors import PlatformError

if TYPE_CHECKING:
    from feast import RepoConfig

    from spanishgas.settings import Settings


class FeatureStoreConfigError(PlatformError, ValueError):
    """The feature store configuration cannot be built."""


def yaml_path(settings: Settings) -> Path:
    """The feature_store YAML of the settings' profile."""
    name = "feature_store.yaml" if settings.profile == "local" else "feature_store.stack.yaml"
    return Path(settings.feast_repo_path) / name


def feast_environment(settings: Settings) -> dict[str, str]:
    """The variables the feature_store YAML files use, as the settings define them."""
    pg, feast = settings.postgres, settings.feast
    return {
        "SPANISHGAS_FEAST__PROJECT": feast.project,
        "SPANISHGAS_FEAST__LOCAL_DIR": str(Path(str(feast.local_dir)).resolve()),
        "SPANISHGAS_FEAST__REDIS_CONNECTION": settings.redis.connection_string,
        "SPANISHGAS_POSTGRES__HOST": pg.host,
        "SPANISHGAS_POSTGRES__PORT": str(pg.port),
        "SPANISHGAS_FEAST__DATABASE": feast.database,
        "SPANISHGAS_POSTGRES__USER": pg.user,
        "SPANISHGAS_POSTGRES__PASSWORD": pg.password.get_secret_value(),
        "SPANISHGAS_POSTGRES__SSLMODE": pg.sslmode,
    }


def render_yaml(settings: Settings) -> str:
    """The profile's feature_store YAML with every variable filled in."""
    path = yaml_path(settings)
    if not path.is_file():
        raise FeatureStoreConfigError(f"{path} not found: SPANISHGAS_FEAST_REPO_PATH must point at feature_repo/")
    # Comments explain the variables by name; only the configuration itself is filled in.
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    try:
        return string.Template(text).substitute(feast_environment(settings))
    except KeyError as exc:
        raise FeatureStoreConfigError(f"{path} uses {exc.args[0]}, which the settings do not define") from exc


def repo_config(settings: Settings) -> RepoConfig:
    """Feast's ``RepoConfig`` for the settings' profile."""
    from feast import RepoConfig

    raw = yaml.safe_load(render_yaml(settings))
    return RepoConfig(repo_path=Path(settings.feast_repo_path).resolve(), **raw)
