"""Typed settings for every stage of the platform.

One object, read from environment variables prefixed ``SPANISHGAS_`` (nested fields use ``__``, e.g.
``SPANISHGAS_POSTGRES__HOST``) and from a ``.env`` file. Two profiles:

* ``local`` (default): embedded, no servers. Lake on the local disk, Spark ``local[*]``, MLflow and
  Optuna on SQLite files, Feast with the file offline store and the SQLite online store.
* ``stack``: Postgres, Redis, an S3-compatible object store and an MLflow tracking server.

Fields left empty are filled from the profile; an explicit value always wins.

Where a deployment runs (``SPANISHGAS_ENVIRONMENT``: dev, staging, production) picks a settings file,
``infra/environments/<environment>.env``, read before ``.env``; secrets may also come as one file each from
``SPANISHGAS_SECRETS_DIR`` (Docker and Kubernetes secrets), named like the variable
(``spanishgas_api__api_keys``). Real environment variables win over every file (docs/deployment.md).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from spanishgas.errors import PlatformError

Profile = Literal["local", "stack"]
Environment = Literal["dev", "staging", "production"]
ENVIRONMENTS = ("dev", "staging", "production")
# Deployment settings files, relative to the working directory (the repository, or /app in the image).
ENVIRONMENTS_DIR = Path("infra") / "environments"


class PostgresSettings(BaseModel):
    """Connection to the Postgres server used by Feast, MLflow, Optuna and the scored table."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: SecretStr = SecretStr("")
    database: str = "spanishgas"
    sslmode: str = "disable"

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (psycopg2 driver) for ``database`` (default: the platform database)."""
        pw = self.password.get_secret_value()
        auth = f"{self.user}:{pw}" if pw else self.user
        return f"postgresql+psycopg2://{auth}@{self.host}:{self.port}/{database or self.database}"


class RedisSettings(BaseModel):
    """Connection to the Redis server used as Feast's online store."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: SecretStr = SecretStr("")

    @property
    def connection_string(self) -> str:
        """Feast's ``host:port,db=N`` form."""
        pw = self.password.get_secret_value()
        extra = f",password={pw}" if pw else ""
        return f"{self.host}:{self.port},db={self.db}{extra}"


class S3Settings(BaseModel):
    """S3-compatible object store holding the lake in the stack profile."""

    endpoint_url: str = "http://127.0.0.1:8333"
    bucket: str = "spanishgas-lake"
    access_key_id: str = "spanishgas"
    secret_access_key: SecretStr = SecretStr("spanishgas-secret")
    region: str = "us-east-1"


class SparkSettings(BaseModel):
    """How jobs get their Spark session. ``master`` is any Spark master URL, so the same jobs run on
    standalone, Kubernetes or YARN clusters unchanged."""

    master: str = "local[*]"
    driver_memory: str = "6g"
    # Few partitions: the machine has 2 cores and the customer-month tables are small.
    shuffle_partitions: int = Field(default=0, description="0 means 4 x available cores")
    ui_enabled: bool = False
    local_ip: str = Field(default="127.0.0.1", description="address the driver binds to (0.0.0.0 in a container)")
    driver_host: str | None = Field(
        default=None, description="address executors reach the driver at (default: local_ip; a container's name)"
    )
    jars_packages: str = Field(default="", description="extra spark.jars.packages, e.g. hadoop-aws for s3a")
    extra_conf: dict[str, str] = Field(default_factory=dict)

    def effective_shuffle_partitions(self) -> int:
        """The configured number, or 4 per core when left at 0."""
        return self.shuffle_partitions or 4 * (os.cpu_count() or 2)


class EtlSettings(BaseModel):
    """How the medallion jobs read the delivery."""

    bulk_csv_min_bytes: int = Field(
        default=256 * 1024**2, ge=0, description="CSV tables this large are read by Arrow inside Spark tasks"
    )
    bulk_csv_block_bytes: int = Field(default=128 * 1024**2, gt=0, description="bytes of a large CSV file per task")
    customer_buckets: int = Field(
        default=16, ge=0, description="large tables are written in this many customer buckets (0: none)"
    )
    period_tolerance_days: int = Field(
        default=31, ge=0, description="how far outside the delivery's period (its hourly files' years) a date may lie"
    )
    reading_tolerance_hours: int = Field(
        default=1, ge=0, description="how far outside its file's year an hourly reading may be stamped"
    )
    max_conflicting_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="share of a snapshot file's rows in key conflicts above which the run fails (below: quarantined)",
    )


class ApiSettings(BaseModel):
    """The call-center scoring service."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_keys: list[SecretStr] = Field(
        default_factory=list, description='keys, or "sha256:<hex>" of a key so the settings hold no key in the clear'
    )
    metrics_require_key: bool = False
    batch_max_customers: int = 100
    # Bounded waits: a slow or stopped online store gives agents a 503 in well under a second.
    online_store_timeout_s: float = 0.25
    online_store_backoff_s: float = Field(
        default=1.0,
        description="after a failed online read, answer 503 at once for this long instead of waiting again",
    )
    feature_reader: Literal["auto", "feast", "redis"] = Field(
        default="auto", description="auto: Redis directly in the stack profile, the Feast SDK otherwise"
    )
    reload_interval_s: float = Field(default=30.0, description="how often to check where `champion` points")
    explanation_cache_size: int = Field(default=50_000, description="scored vectors kept per worker; 0 disables")
    warm_cache: bool = Field(
        default=True, description="score every customer of the online store into the cache when a model loads"
    )
    warm_challenger: bool = Field(
        default=True,
        description="with warm_cache: the `challenger` version's answers too, so promoting it needs no refill",
    )
    top_reasons: int = 3


class DashboardSettings(BaseModel):
    """The analyst app (Streamlit, ``spanishgas dashboard``)."""

    host: str = Field(default="127.0.0.1", description="address the app listens on (loopback: the local demo)")
    port: int = 8501
    api_url: str | None = Field(
        default=None, description="the scoring API the customer page calls (empty: the same service in process)"
    )
    api_key: SecretStr | None = Field(default=None, description="an API key of the scoring API (X-API-Key)")
    api_timeout_s: float = Field(default=2.0, description="past this the customer page answers in process instead")
    require_sign_in: bool | None = Field(
        default=None,
        description="sign in through Streamlit's OIDC ([auth] in its secrets file); empty: in the stack profile only",
    )


class FeastSettings(BaseModel):
    """The feature store: project name, how long a monthly snapshot stays valid, where it keeps its files."""

    project: str = "spanishgas"
    # Features are monthly snapshots: a 62-day TTL still serves the previous snapshot when one monthly
    # refresh is late, and returns nulls (not stale values) after two missed refreshes.
    ttl_days: int = 62
    offline_table: str = "customer_features"
    # Its own database in the stack profile, because it runs with a planner setting of its own (ADR 0004).
    database: str = "spanishgas_features"
    local_dir: Path | None = Field(default=None, description="local profile: offline Parquet, registry, online db")


class ModelSettings(BaseModel):
    """The churn model: training, tuning, decision policy and promotion gate (docs/model.md)."""

    registered_name: str = "spanishgas-churn"
    experiment: str = Field(default="E5", description="feature set E0-E8 the default model uses")
    trials: int = 50
    tuning_timeout_s: int = 540
    validation_dates: int = Field(default=2, description="as-of dates in the validation period")
    # Three months of churners steady the test figure and the promotion gate (ADR 0005); fewer when the
    # history is too short to keep the training and validation periods.
    test_dates: int = Field(default=3, ge=1, description="latest as-of dates in the forward test period (at most)")
    recall_target: float = Field(default=0.70, description="the threshold maximizes precision at this recall")
    # The utility's requirement. On data whose best possible PR-AUC is lower, promotion refuses and says so.
    pr_auc_floor: float = 0.70
    champion_margin: float = Field(default=0.01, description="PR-AUC a challenger may lose against the champion")
    # Calibrated 90-day churn probability at which each tier starts (below medium: low).
    risk_tiers: dict[str, float] = Field(default_factory=lambda: {"medium": 0.05, "high": 0.12, "critical": 0.25})


class RetentionSettings(BaseModel):
    """Retention plans: what the batch plan keeps aside to measure what offers really do, and the language
    agents read reasons and recommendations in."""

    # A random share of the customers a plan selects is not contacted, so realized uplift can be measured
    # against them once the plan's labels mature (docs/monitoring.md).
    holdout_share: float = Field(default=0.10, ge=0.0, lt=1.0, description="share of selected customers not contacted")
    # The call center speaks Spanish; an API request may ask for English (Accept-Language or ?lang=).
    language: Literal["es", "en"] = Field(
        default="es", description="language of reasons and recommendations when a request names none"
    )


class MonitoringSettings(BaseModel):
    """Drift, decay and the retraining decision (docs/monitoring.md). Per-feature overrides of the
    thresholds live in a YAML file (``thresholds_file``)."""

    psi_warn: float = 0.10
    psi_alert: float = 0.25
    ks_warn: float = 0.15
    ks_alert: float = 0.30
    js_warn: float = 0.10
    js_alert: float = 0.20
    level_warn: float = Field(default=0.10, description="relative move of a level's median")
    level_alert: float = 0.25
    spread_warn: float = Field(default=0.05, description="change of a level's interquartile range over its median")
    spread_alert: float = 0.10
    significance: float = Field(default=0.001, description="an effect size counts only below this p-value")
    missing_warn: float = Field(default=0.05, description="absolute change in a feature's missing share")
    missing_alert: float = 0.10
    # The call center sizes its retention work on the expected churners: a quarter more (or fewer) than
    # in the model's test period means the plan no longer holds.
    expected_rate_warn: float = Field(default=0.10, description="relative change of the mean churn probability")
    expected_rate_alert: float = 0.25
    thresholds_file: Path | None = Field(default=None, description="YAML of per-feature threshold overrides")
    # Fewer rows than this in a slice give no verdict (the significance gate handles small slices above it).
    min_rows: int = 30
    intake_months: int = Field(default=3, ge=1, description="the intake slice: customers who joined this recently")
    reference_sample_rows: int = Field(default=3_000, description="rows kept per calendar month for KS")
    # Delayed-label performance: a matured cohort has decayed when either rule breaks.
    decay_pr_auc_drop: float = Field(default=0.20, description="relative PR-AUC drop against the test period")
    decay_ece_rise: float = Field(default=0.05, description="absolute ECE rise against the test period")
    decay_z: float = Field(default=2.0, description="a PR-AUC drop counts beyond this many standard errors")
    min_cohort_churners: int = Field(default=10, description="fewer churners in a cohort give no verdict")
    retrain_after_days: int = Field(default=35, description="model age (since registration) that asks for a retrain")
    drift_importance_share: float = Field(
        default=0.20, description="retrain when alert-level features carry this share of the model's importance"
    )
    quarantine_share_alert: float = Field(
        default=0.01, description="quarantined share of a layer's rows that alerts ops (pushed with the metrics)"
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the monitoring tables")
    pushgateway_url: str | None = Field(default=None, description="Pushgateway for the metrics; empty: no push")
    push_timeout_s: float = 5.0


class OrchestrationSettings(BaseModel):
    """What the Airflow DAGs need beyond the stages' own settings (docs/orchestration.md)."""

    landing_dir: Path | None = Field(
        default=None, description="where deliveries are dropped (default <data_root>/landing)"
    )
    delivery_marker: str = Field(
        default="_DELIVERY_COMPLETE",
        description="file written last into a delivery folder: the seven files are all there",
    )
    poke_interval_s: float = Field(default=60.0, gt=0, description="how often the landing sensor looks")
    spark_conn_id: str = Field(
        default="spark_default", description="Airflow connection the Spark jobs are submitted to"
    )
    task_retries: int = Field(default=1, ge=0)
    retry_delay_s: float = Field(default=120.0, ge=0)


class Settings(BaseSettings):
    """Every setting of the platform; build it with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="SPANISHGAS_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    profile: Profile = "local"
    environment: Environment = Field(default="dev", description="the deployment this process belongs to")
    data_root: Path = Path("data")
    raw_dir: Path | None = None
    truth_dir: Path | None = None
    lake_uri: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    optuna_storage: str | None = None
    feast_repo_path: Path = Path("feature_repo")
    gx_root: Path = Path("great_expectations")

    label_horizon_days: int = 90
    seed: int = 42

    spark: SparkSettings = Field(default_factory=SparkSettings)
    etl: EtlSettings = Field(default_factory=EtlSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    feast: FeastSettings = Field(default_factory=FeastSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual order (arguments, environment, settings files, secret files), with secret files that
        may name nested fields (``spanishgas_postgres__password``)."""
        from pydantic_settings import NestedSecretsSettingsSource

        secrets = NestedSecretsSettingsSource(file_secret_settings, secrets_nested_delimiter="__")
        return init_settings, env_settings, dotenv_settings, secrets

    @model_validator(mode="after")
    def _fill_from_profile(self) -> Settings:
        root = self.data_root
        if self.raw_dir is None:
            self.raw_dir = root / "raw"
        # Ground truth lives outside the raw drop so the pipeline can never read it by accident.
        if self.truth_dir is None:
            self.truth_dir = root / "truth"
        if self.feast.local_dir is None:
            self.feast.local_dir = root / "feature_store"
        if self.orchestration.landing_dir is None:
            self.orchestration.landing_dir = root / "landing"
        if self.profile == "local":
            self.lake_uri = self.lake_uri or str(root / "lake")
            self.mlflow_tracking_uri = self.mlflow_tracking_uri or f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
            self.optuna_storage = self.optuna_storage or f"sqlite:///{root / 'optuna.db'}"
            self.monitoring.database_url = self.monitoring.database_url or f"sqlite:///{root / 'monitoring.db'}"
        else:
            self.lake_uri = self.lake_uri or f"s3a://{self.s3.bucket}/lake"
            self.mlflow_tracking_uri = self.mlflow_tracking_uri or "http://127.0.0.1:5000"
            self.optuna_storage = self.optuna_storage or self.postgres.sqlalchemy_url("optuna")
            self.monitoring.database_url = self.monitoring.database_url or self.postgres.sqlalchemy_url()
            self.monitoring.pushgateway_url = self.monitoring.pushgateway_url or "http://127.0.0.1:9091"
        self.mlflow_registry_uri = self.mlflow_registry_uri or self.mlflow_tracking_uri
        return self

    def rooted_at(self, data_root: Path, **updates: object) -> Settings:
        """A copy whose paths and stores derive from ``data_root`` (the profile's defaults are filled
        again, as if the settings had been read with that root); ``updates`` override any field."""
        derived = {"raw_dir", "truth_dir", "lake_uri", "mlflow_tracking_uri", "mlflow_registry_uri", "optuna_storage"}
        values = self.model_dump(exclude=derived)
        values["feast"]["local_dir"] = None
        values["monitoring"]["database_url"] = None
        values["orchestration"]["landing_dir"] = None
        values.update(data_root=data_root, **updates)
        return type(self).model_validate(values)

    @property
    def lake_is_local(self) -> bool:
        """True when the lake is a folder on this machine rather than an object store."""
        from spanishgas.lake import LOCAL, lake_scheme

        return lake_scheme(str(self.lake_uri)) == LOCAL

    def describe(self) -> dict[str, str]:
        """Effective values worth showing to a person (no secrets)."""
        return {
            "profile": self.profile,
            "environment": self.environment,
            "raw_dir": str(self.raw_dir),
            "truth_dir": str(self.truth_dir),
            "lake_uri": str(self.lake_uri),
            "spark.master": self.spark.master,
            "mlflow_tracking_uri": str(self.mlflow_tracking_uri),
            "optuna_storage": _hide_password(str(self.optuna_storage)),
            "postgres": f"{self.postgres.host}:{self.postgres.port}/{self.postgres.database}",
            "redis": f"{self.redis.host}:{self.redis.port}/{self.redis.db}",
            "s3.endpoint_url": self.s3.endpoint_url,
            "monitoring.database_url": _hide_password(str(self.monitoring.database_url)),
            "monitoring.pushgateway_url": self.monitoring.pushgateway_url or "(no push)",
        }


def _hide_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.split("@", 1)
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in auth else url


class UnknownEnvironment(PlatformError, ValueError):
    """``SPANISHGAS_ENVIRONMENT`` names no deployment, or one whose settings file is missing."""


def environment_files(environment: str, home: Path | None = None) -> tuple[Path, ...]:
    """The settings files of a deployment environment, lowest priority first: its file under
    ``infra/environments/`` (required for staging and production), then ``.env``."""
    if environment not in ENVIRONMENTS:
        raise UnknownEnvironment(f"SPANISHGAS_ENVIRONMENT={environment!r}: use one of {', '.join(ENVIRONMENTS)}")
    home = home or Path.cwd()
    shared = home / ENVIRONMENTS_DIR / f"{environment}.env"
    if environment != "dev" and not shared.is_file():
        raise UnknownEnvironment(f"SPANISHGAS_ENVIRONMENT={environment}: its settings file {shared} is missing")
    return shared, home / ".env"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time): the environment's
    settings file and ``.env`` under the working directory, secret files, then the real environment."""
    files = environment_files(os.environ.get("SPANISHGAS_ENVIRONMENT") or "dev")
    return Settings(_env_file=files, _secrets_dir=os.environ.get("SPANISHGAS_SECRETS_DIR") or None)
