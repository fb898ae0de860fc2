"""`spanishgas <stage>`: one command line for every stage, used by people, Airflow tasks and the docs."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

app = typer.Typer(
    name="spanishgas",
    help="SpanishGas churn-and-retention platform. Each subcommand is one stage of the pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


@app.callback()
def _progress_output() -> None:
    """Long stages draw progress bars for a person at a terminal and log one line per step otherwise."""
    from spanishgas import progress

    progress.configure_logging()
    progress.use_terminal(console if console.is_terminal else None)


def _parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@app.command("settings")
def show_settings(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show the effective settings (profile, lake, services); secrets are never printed."""
    from spanishgas.settings import get_settings

    described = get_settings().describe()
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    table = Table("setting", "value", title="SpanishGas settings")
    for key, value in described.items():
        table.add_row(key, value)
    Console().print(table)


@app.command("contracts")
def show_contracts(
    markdown: Annotated[bool, typer.Option("--markdown", help="print docs/data_contracts.md")] = False,
) -> None:
    """List the seven raw files and their columns as the platform expects them."""
    from spanishgas.contracts import RAW_FILES, contracts_markdown

    if markdown:
        typer.echo(contracts_markdown())
        return
    for c in RAW_FILES:
        typer.echo(f"{c.pattern} ({c.format}): {', '.join(c.column_names)}")


@app.command("generate")
def generate_cmd(
    customers: Annotated[int, typer.Option(help="base customers (full scale: 20099)")] = 2_000,
    start: Annotated[str, typer.Option(help="first day simulated, YYYY-MM-DD")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="last day delivered, YYYY-MM-DD")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="random seed; same seed, same bytes")] = 42,
    out: Annotated[Path | None, typer.Option(help="raw drop folder (default: settings raw_dir)")] = None,
    truth: Annotated[Path | None, typer.Option(help="ground-truth folder, outside the drop")] = None,
    dirtiness: Annotated[int, typer.Option(min=0, max=2, help="0 clean, 1 as delivered, 2 harsh")] = 1,
    scenario: Annotated[str, typer.Option(help="none | price_shock | new_channel")] = "none",
    scenario_start: Annotated[str | None, typer.Option(help="day the scenario starts")] = None,
    emit_from: Annotated[str | None, typer.Option(help="write only events from this day on")] = None,
    incremental: Annotated[
        bool, typer.Option(help="continue the newest run recorded in --truth by one month, writing that month only")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="replace a delivery already in --out")] = False,
    workers: Annotated[int, typer.Option(min=1, help="processes for the hourly file")] = 2,
) -> None:
    """Write a synthetic delivery of the seven raw files, plus ground truth for evaluation."""
    from dataclasses import replace

    from spanishgas.generator import Dirtiness, GeneratorConfig, Scenario, config_from_manifest, generate
    from spanishgas.generator.delivery import latest_manifest
    from spanishgas.settings import get_settings

    settings = get_settings()
    if scenario not in {s.value for s in Scenario}:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; use none, price_shock or new_channel")
    out_dir = out or Path(str(settings.raw_dir))
    truth_dir = truth or Path(str(settings.truth_dir))
    if incremental:
        try:
            previous = config_from_manifest(latest_manifest(truth_dir))
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
        first = previous.end + timedelta(days=1)
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        month = first.strftime("%Y-%m")
        cfg = replace(
            previous,
            end=last,
            emit_from=first,
            out_dir=out or Path(str(settings.raw_dir)).with_name(f"raw_{month}"),
            truth_dir=truth_dir / "increments" / month,
            workers=workers,
        )
    else:
        try:
            cfg = GeneratorConfig(
                customers=customers,
                start=date.fromisoformat(start),
                end=date.fromisoformat(end),
                seed=seed,
                out_dir=out_dir,
                truth_dir=truth_dir,
                dirtiness=Dirtiness(dirtiness),
                scenario=Scenario(scenario),
                scenario_start=_parse_date(scenario_start),
                emit_from=_parse_date(emit_from),
                label_horizon_days=settings.label_horizon_days,
                workers=workers,
            )
        except ValueError as exc:  # bad dates or an inconsistent combination of options
            raise typer.BadParameter(str(exc)) from exc
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("simulating", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=stage)

        try:
            report = generate(cfg, on_progress=on_progress, overwrite=overwrite)
        except (FileExistsError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from exc
    table = Table("file", "rows", title=f"Synthetic delivery in {report.out_dir} ({report.seconds} s)")
    for name, stats in report.files.items():
        table.add_row(name, f"{int(stats.get('rows', stats.get('records', 0))):,}")
    console.print(table)
    console.print(
        f"customers {report.customers_delivered:,}, churn rate {report.churn_rate:.2%}; "
        f"ground truth in {report.truth_dir}"
    )


def _run_layer(layer: str, **kwargs: object) -> None:
    """Run one layer stage with clear errors: nothing is published when it fails."""
    from spanishgas.etl import pipeline
    from spanishgas.settings import get_settings

    try:
        manifest = pipeline.run_layer(layer, get_settings(), **kwargs)  # type: ignore[arg-type]
    except pipeline.layer_errors() as exc:
        console.print(f"[red]{layer} failed, nothing published:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(pipeline.layer_summary(manifest), indent=2))


@app.command("bronze")
def bronze_cmd(
    raw: Annotated[Path | None, typer.Option(help="raw drop folder (default: settings raw_dir)")] = None,
    run_id: Annotated[str | None, typer.Option(help="run id (default: bronze-<UTC time>)")] = None,
) -> None:
    """Ingest the raw drop into a new bronze run: typed Parquet, quarantine, manifest, GX gate, publish."""
    _run_layer("bronze", raw_dir=raw, run_id=run_id)


@app.command("silver")
def silver_cmd(
    bronze_run: Annotated[str | None, typer.Option(help="published bronze run (default: the latest)")] = None,
    run_id: Annotated[str | None, typer.Option(help="run id (default: silver-<UTC time>)")] = None,
) -> None:
    """Clean and conform a bronze run into silver entities and the customer-month P&L; gate; publish."""
    _run_layer("silver", input_run=bronze_run, run_id=run_id)


@app.command("gold")
def gold_cmd(
    silver_run: Annotated[str | None, typer.Option(help="published silver run (default: the latest)")] = None,
    run_id: Annotated[str | None, typer.Option(help="run id (default: gold-<UTC time>)")] = None,
) -> None:
    """Build point-in-time features, the training set and offer candidates from a silver run; gate; publish."""
    _run_layer("gold", input_run=silver_run, run_id=run_id)


@app.command("features-doc")
def features_doc_cmd() -> None:
    """Print docs/features.md (generated from the feature registry)."""
    from spanishgas.feature_registry import features_markdown

    typer.echo(features_markdown(), nl=False)


features_app = typer.Typer(
    help="Feature store (Feast): load gold, apply definitions, materialize, build training sets.",
    no_args_is_help=True,
)
app.add_typer(features_app, name="features")


def _feature_errors() -> tuple[type[BaseException], ...]:
    # Every error the platform raises on purpose (a service outage included) is reported in one line.
    from spanishgas.errors import PlatformError

    return (PlatformError,)


@features_app.command("env")
def features_env_cmd() -> None:
    """Print `export` lines that let the feast CLI read feature_repo/ exactly as the platform does."""
    import shlex

    from spanishgas.feature_store.config import feast_environment
    from spanishgas.settings import get_settings

    for key, value in feast_environment(get_settings()).items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@features_app.command("load")
def features_load_cmd(
    gold_run: Annotated[str | None, typer.Option(help="published gold run (default: the latest)")] = None,
) -> None:
    """Load gold's customer_features_asof into the offline store (Parquet locally, COPY into Postgres)."""
    from dataclasses import asdict

    from spanishgas.feature_store.offline import load_offline
    from spanishgas.settings import get_settings

    try:
        report = load_offline(get_settings(), gold_run)
    except _feature_errors() as exc:
        console.print(f"[red]features load failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(asdict(report), indent=2))


@features_app.command("apply")
def features_apply_cmd() -> None:
    """Register the entity, data source, feature views and feature services in the Feast registry."""
    from spanishgas.feature_store.store import apply
    from spanishgas.settings import get_settings

    typer.echo(json.dumps(apply(get_settings()), indent=2))


@features_app.command("materialize")
def features_materialize_cmd(
    start: Annotated[str | None, typer.Option(help="ISO start (default: where the last run ended)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO end (default: just after the newest snapshot)")] = None,
) -> None:
    """Copy the latest features into the online store (SQLite locally, Redis in the stack); incremental."""
    from dataclasses import asdict
    from datetime import datetime

    from spanishgas.feature_store.store import materialize
    from spanishgas.settings import get_settings

    try:
        report = materialize(
            get_settings(),
            start=datetime.fromisoformat(start) if start else None,
            end=datetime.fromisoformat(end) if end else None,
        )
    except _feature_errors() as exc:
        console.print(f"[red]materialize failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(asdict(report), indent=2))


@features_app.command("training-set")
def features_training_set_cmd(
    service: Annotated[str, typer.Option(help="feature service")] = "churn_model_v1",
    out: Annotated[
        Path | None, typer.Option(help="Parquet file (default: <data_root>/training/<service>.parquet)")
    ] = None,
) -> None:
    """Build a point-in-time training set: gold's labelled (customer, as-of) rows joined by Feast."""
    from spanishgas.feature_store.store import training_entities, training_set
    from spanishgas.settings import get_settings

    settings = get_settings()
    try:
        entities = training_entities(settings)
        frame = training_set(settings, entities, service)
    except _feature_errors() as exc:
        console.print(f"[red]training-set failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    target = out or Path(settings.data_root) / "training" / f"{service}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, index=False)
    summary = {"rows": len(frame), "positives": int(frame["label"].sum()), "service": service, "path": str(target)}
    summary["gold_run_id"] = entities.attrs["gold_run_id"]
    typer.echo(json.dumps(summary, indent=2))


def _model_errors() -> tuple[type[BaseException], ...]:
    # MlflowException: for example no `champion` yet, or no segment model; its message names what is missing.
    from mlflow.exceptions import MlflowException

    from spanishgas.model.metrics import LeakageSuspected
    from spanishgas.model.registry import RetiredFeatures, RollbackError
    from spanishgas.model.split import SplitError

    return (*_feature_errors(), SplitError, LeakageSuspected, RollbackError, RetiredFeatures, MlflowException)


@app.command("train")
def train_cmd(
    experiment: Annotated[str | None, typer.Option(help="feature set E0-E8 (default: settings)")] = None,
    trials: Annotated[int | None, typer.Option(help="Optuna trials (default: settings)")] = None,
    compare: Annotated[
        str | None, typer.Option(help="comma-separated experiments to compare instead, e.g. E0,E1,E5 or 'all'")
    ] = None,
) -> None:
    """Train the churn model on the feature store's training set; register it as the challenger."""
    from spanishgas.feature_registry import experiments
    from spanishgas.model.train import compare_experiments, report_dict, train
    from spanishgas.settings import get_settings

    settings = get_settings()
    try:
        if compare:
            names = list(experiments()) if compare == "all" else [n.strip() for n in compare.split(",")]
            table = compare_experiments(settings, names, trials or 15)
            out = Path(settings.data_root) / "experiments" / "comparison.md"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
            typer.echo(table.to_string(index=False))
            console.print(f"comparison table: {out}")
            return
        report = train(settings, experiment, trials)
    except _model_errors() as exc:
        console.print(f"[red]train failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(report_dict(report), indent=2))


@app.command("promote")
def promote_cmd(
    floor: Annotated[float | None, typer.Option(help="PR-AUC floor for this decision (default: settings)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the decision log")] = "",
) -> None:
    """Move `champion` to the challenger if it passes the gate on the forward test rows."""
    from dataclasses import asdict

    from spanishgas.model.train import promote_challenger
    from spanishgas.settings import get_settings

    settings = get_settings()
    try:
        result = promote_challenger(settings, floor=floor, reason=reason)
    except _model_errors() as exc:
        console.print(f"[red]promote failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(asdict(result), indent=2))
    if not result.promoted:
        console.print("[yellow]not promoted:[/yellow] " + "; ".join(result.reasons), soft_wrap=True)
        raise typer.Exit(2)


@app.command("import-version")
def import_version_cmd(
    from_registry: Annotated[str, typer.Option(help="the other environment's MLflow registry (staging's URI)")],
    version: Annotated[str | None, typer.Option(help="its version to bring (default: its champion)")] = None,
) -> None:
    """Copy a version from another environment's registry in as `challenger`; `promote` then judges it here."""
    from dataclasses import asdict

    from spanishgas.model.transfer import import_version
    from spanishgas.settings import get_settings

    try:
        imported = import_version(get_settings(), from_registry, version)
    except _model_errors() as exc:
        console.print(f"[red]import failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(asdict(imported), indent=2))
    console.print(f"v{imported.version} is the challenger here: `spanishgas promote` judges it on this environment")


@app.command("rollback")
def rollback_cmd(reason: Annotated[str, typer.Option(help="why, for the decision log")] = "") -> None:
    """Move `champion` back to the previous champion version."""
    from spanishgas.model.registry import rollback
    from spanishgas.settings import get_settings

    try:
        outcome = rollback(get_settings(), reason)
    except _model_errors() as exc:
        console.print(f"[red]rollback failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(outcome, indent=2))


@app.command("segment")
def segment_cmd() -> None:
    """Fit customer segments on the latest snapshot and register them in MLflow."""
    from spanishgas.retention.job import run_segment
    from spanishgas.settings import get_settings

    try:
        outcome = run_segment(get_settings())
    except _model_errors() as exc:
        console.print(f"[red]segment failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(outcome, indent=2, default=str))


def _fail(stage: str, exc: BaseException, registry_hint: str) -> None:
    """Report a failed publishing stage (with what to run when the registry lacks a model) and exit 1."""
    hint = f" ({registry_hint})" if type(exc).__name__ == "MlflowException" else ""
    console.print(f"[red]{stage} failed, nothing published:[/red] {exc}{hint}", soft_wrap=True)
    raise typer.Exit(1) from exc


def _score(budget: float | None, as_of: str | None = None) -> None:
    from spanishgas.retention.job import run_score
    from spanishgas.retention.offers import GuardrailViolation
    from spanishgas.settings import get_settings

    try:
        result = run_score(get_settings(), budget, _parse_date(as_of))
    except (*_model_errors(), GuardrailViolation) as exc:
        _fail(
            "scoring", exc, "scoring needs a `champion` and a segment model: `spanishgas train`, `promote`, `segment`"
        )
    out = {
        "run_id": result.run_id,
        "rows": result.rows,
        "seconds_after_model_load": result.seconds_after_load,
        "lake": result.lake_path,
        "postgres": result.postgres_table,
        **result.summary,
    }
    typer.echo(json.dumps(out, indent=2, default=str))


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="score an earlier gold snapshot, YYYY-MM-01 (a backfill; default: the latest)"),
]


@app.command("score")
def score_cmd(as_of: AsOfOption = None) -> None:
    """Score, explain, segment every active customer with the champion; actions from the rules policy."""
    _score(None, as_of)


@app.command("recommend")
def recommend_cmd(
    budget: Annotated[float, typer.Option(min=0, help="retention budget in euros for this plan")] = 50_000.0,
    as_of: AsOfOption = None,
) -> None:
    """Score every active customer and choose offers within a budget (expected-value optimizer)."""
    _score(budget, as_of)


@app.command("monitor")
def monitor_cmd(
    push: Annotated[bool, typer.Option(help="push the metrics to the Pushgateway when one is configured")] = True,
    reference_for: Annotated[
        str | None,
        typer.Option(help="build the reference profile of this model version from its training set, then stop"),
    ] = None,
) -> None:
    """Measure drift, matured-cohort performance, data quality and the plans; decide whether to retrain.

    The decision is printed and stored (lake, database, metrics); the exit code does not encode it: 0 means
    the monitor ran, whatever it found."""
    from spanishgas.monitoring.job import run_monitor
    from spanishgas.monitoring.reference import ReferenceMissing, rebuild_reference
    from spanishgas.settings import get_settings

    settings = get_settings()
    try:
        if reference_for:
            profile = rebuild_reference(settings, reference_for)
            typer.echo(
                json.dumps(
                    {
                        "model_version": reference_for,
                        "run_id": profile.run_id,
                        "watched": len(profile.watched),
                        "slices": sorted(profile.slices),
                    },
                    indent=2,
                )
            )
            return
        result = run_monitor(settings, push=push)
    except (*_model_errors(), ReferenceMissing) as exc:
        _fail("monitor", exc, "monitoring needs a `champion`: `spanishgas train`, then `spanishgas promote`")
    if result.push.startswith("not pushed") and settings.monitoring.pushgateway_url:
        console.print(f"[yellow]warning:[/yellow] {result.push}", soft_wrap=True)
    typer.echo(json.dumps(result.summary(), indent=2, default=str))


@app.command("dashboards")
def dashboards_cmd(
    folder: Annotated[Path, typer.Option(help="where Grafana's provisioning reads the dashboards")] = Path(
        "monitoring/grafana/dashboards"
    ),
) -> None:
    """Write the Grafana dashboards (JSON) from their definitions in spanishgas.observability."""
    from spanishgas.observability.dashboards import write_dashboards

    for path in write_dashboards(folder):
        console.print(f"wrote {path}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="bind address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: settings)")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes (default: settings)")] = None,
) -> None:
    """Run the call-center scoring API (FastAPI on uvicorn): GET /score/{customer_id} and friends."""
    from spanishgas.serving import run_server
    from spanishgas.settings import get_settings

    try:
        run_server(get_settings(), host, port, workers)
    except ValueError as exc:
        console.print(f"[red]cannot serve:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc


@app.command("dashboard")
def dashboard_cmd(
    host: Annotated[str | None, typer.Option(help="bind address (default: settings, loopback)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: settings, 8501)")] = None,
) -> None:
    """Serve the analyst app (Streamlit): the book, the plan, the segments, the model and its drift."""
    import os

    from spanishgas.analyst.app import app_url, dashboard_command
    from spanishgas.settings import get_settings

    settings = get_settings()
    try:
        command = dashboard_command(settings, host, port)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot start the app:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(f"analyst app on {app_url(settings, host, port)}")
    os.execv(command[0], command)


@app.command("demo")
def demo_cmd(
    customers: Annotated[int, typer.Option(help="base customers")] = 2_000,
    workdir: Annotated[Path, typer.Option(help="where the demo writes everything")] = Path("data/demo"),
) -> None:
    """Run every stage that exists end to end on embedded defaults (no servers) and say where outputs are."""
    from spanishgas.demo import run_demo

    run_demo(customers=customers, workdir=workdir, console=console)


def main() -> None:
    """Entry point of the ``spanishgas`` console script: a platform error no command reported itself (a
    server lost by a stage without its own handler) is still one red line and exit code 1."""
    from spanishgas.errors import PlatformError

    try:
        app(standalone_mode=True)
    except PlatformError as exc:
        command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-"))
        console.print(f"[red]{command or 'spanishgas'} failed:[/red] {exc}", soft_wrap=True)
        raise SystemExit(1) from exc


if __name__ == "__main__":  # pragma: no cover
    main()
