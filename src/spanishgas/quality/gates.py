"""Great Expectations gates: one suite and checkpoint per layer and table, run on the Spark DataFrames.

The GX project is a file context rooted exactly at ``settings.gx_root`` (``great_expectations/``). Suites
are built here on every run (bronze's from the data contracts, silver's and gold's from the rules below)
and saved to the project, so Data Docs show what each gate checked. A failed gate raises
:class:`GateFailed`; the caller then publishes nothing.

Gates stay cheap on the large tables: each expectation is one aggregate over a column of Parquet, and
value ranges are left to bronze's row checks there. Keys are not unique in bronze, by design: a delivery
with repeated or conflicting lines is deduplicated in silver, whose gates check the keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanishgas.contracts import RAW_FILES, FileContract
from spanishgas.errors import PlatformError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DATASOURCE = "spanishgas_lake"
BATCH = "whole_table"
DOCS_SITE = "local_site"
LARGE_TABLES = {"consumption_hourly"}
NULL_FEATURES = "_missing_feature_count"
# On the large tables, "no required value is missing" is one expectation over a per-row count of missing
# required values (one scan) instead of one per column (a scan each: 4 on bronze's 155 million readings).
MISSING_REQUIRED = "_missing_required_values"


class GateFailed(PlatformError, RuntimeError):
    """A layer's data broke its expectations; the layer is not published."""

    def __init__(self, layer: str, table: str, failures: list[dict[str, Any]]) -> None:
        self.layer, self.table, self.failures = layer, table, failures
        described = "; ".join(
            f"{f['type']}({f.get('column') or ''}) observed {f.get('observed_value', f.get('unexpected_count'))}"
            for f in failures
        )
        super().__init__(f"{layer} gate failed for {table}: {described}")


@dataclass
class Rule:
    """One expectation, in a form independent of GX's classes (so rules are plain data)."""

    kind: str
    column: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    counts_missing: tuple[str, ...] = ()  # kind "none_missing": the columns whose missing values are counted


def none_missing(columns: list[str]) -> Rule:
    """No row misses any of ``columns`` (checked on the ``_missing_required_values`` column it implies)."""
    return Rule("max_between", MISSING_REQUIRED, {"max_value": 0}, counts_missing=tuple(columns))


def with_derived_columns(df: DataFrame, rules: list[Rule]) -> DataFrame:
    """Add the columns that rules are checked on but the table does not store."""
    from pyspark.sql import functions as F

    for rule in rules:
        if rule.counts_missing:
            df = df.withColumn(MISSING_REQUIRED, sum(F.col(c).isNull().cast("int") for c in rule.counts_missing))
    return df


def context(gx_root: Path) -> Any:
    """The file data context whose configuration folder is exactly ``gx_root``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    import great_expectations as gx

    # context_root_dir keeps the folder's own name; project_root_dir would create <root>/gx instead.
    ctx = gx.get_context(mode="file", context_root_dir=Path(gx_root).absolute())
    if ctx.variables.progress_bars is None:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.variables.save()
    return ctx


def _expectation(rule: Rule) -> Any:
    import great_expectations.expectations as gxe

    classes = {
        "exists": gxe.ExpectColumnToExist,
        "not_null": gxe.ExpectColumnValuesToNotBeNull,
        "between": gxe.ExpectColumnValuesToBeBetween,
        "in_set": gxe.ExpectColumnValuesToBeInSet,
        "unique": gxe.ExpectColumnValuesToBeUnique,
        "compound_unique": gxe.ExpectCompoundColumnsToBeUnique,
        "row_count": gxe.ExpectTableRowCountToEqual,
        "row_count_between": gxe.ExpectTableRowCountToBeBetween,
        "min_between": gxe.ExpectColumnMinToBeBetween,
        "max_between": gxe.ExpectColumnMaxToBeBetween,
        "mean_between": gxe.ExpectColumnMeanToBeBetween,
    }
    kwargs = dict(rule.kwargs)
    if rule.column is not None:
        kwargs["column"] = rule.column
    return classes[rule.kind](**kwargs)


def bronze_rules(contract: FileContract, accepted_rows: int) -> list[Rule]:
    """Bronze accepted rows honour the contract, and their count reconciles with the manifest."""
    rules: list[Rule] = [Rule("exists", c.name) for c in contract.columns]
    required = set(contract.key) | {c.name for c in contract.columns if not c.nullable}
    large = contract.name in LARGE_TABLES
    if large:
        rules.append(none_missing([c.name for c in contract.columns if c.name in required]))
    for c in contract.columns:
        if c.name in required and not large:
            rules.append(Rule("not_null", c.name))
        if c.allowed and not large:
            rules.append(Rule("in_set", c.name, {"value_set": list(c.allowed)}))
        if (c.minimum is not None or c.maximum is not None) and not large:
            rules.append(Rule("between", c.name, {"min_value": c.minimum, "max_value": c.maximum}))
    rules.append(Rule("row_count", kwargs={"value": accepted_rows}))
    return rules


# Silver and gold tables are counted from the very files they are checked on, so an "equals the manifest"
# expectation could never fail; they must not be empty instead. Row counts reconcile against the raw bytes
# in bronze, and silver's readings against bronze minus unknown customers and duplicates in the e2e tests.
NOT_EMPTY = Rule("row_count_between", kwargs={"min_value": 1})


def silver_rules(table: str) -> list[Rule]:
    """What clean, conformed silver tables guarantee."""
    base = [NOT_EMPTY]
    specific: dict[str, list[Rule]] = {
        "customers": [
            Rule("unique", "customer_id"),
            Rule("in_set", "segment", {"value_set": ["residential", "sme", "corporate"]}),
            Rule("not_null", "sales_channel"),
        ],
        "contracts": [Rule("unique", "customer_id"), Rule("not_null", "next_renewal_date")],
        "churn_labels": [Rule("unique", "customer_id"), Rule("in_set", "churn", {"value_set": [0, 1]})],
        "consumption_hourly": [
            none_missing(["customer_id", "local_ts"]),
            Rule("min_between", "elec_kwh", {"min_value": 0.0}),
            Rule("min_between", "gas_m3", {"min_value": 0.0}),
            Rule("between", "tariff_period", {"min_value": 1, "max_value": 3}),
        ],
        "prices": [
            Rule("compound_unique", kwargs={"column_list": ["customer_id", "month"]}),
            Rule("between", "variable_price_tier1_eur_kwh", {"min_value": 0.0001, "max_value": 5.0}),
        ],
        "costs": [Rule("compound_unique", kwargs={"column_list": ["province_code", "month"]})],
        "interactions": [
            Rule(
                "in_set",
                "intent",
                {"value_set": ["cancellation", "complaint", "billing", "pricing", "renewal", "other"]},
            ),
            Rule("between", "sentiment_score", {"min_value": -1.0, "max_value": 1.0}),
        ],
        "customer_month": [
            Rule("compound_unique", kwargs={"column_list": ["customer_id", "month"]}),
            Rule("min_between", "elec_kwh", {"min_value": 0.0}),
            Rule("not_null", "margin_eur"),
        ],
    }
    return base + specific.get(table, [])


def gold_rules(table: str) -> list[Rule]:
    """Gold tables: keys unique, features present and never null, labels binary."""
    rules = [NOT_EMPTY]
    if table in ("customer_features_asof", "churn_training_dataset", "recommendation_candidates"):
        rules.append(Rule("compound_unique", kwargs={"column_list": ["customer_id", "as_of_date"]}))
        # one expectation over a per-row count of missing features instead of one per feature: a single scan
        rules.append(Rule("max_between", NULL_FEATURES, {"max_value": 0}))
        rules.append(Rule("between", "months_to_renewal", {"min_value": -240, "max_value": 13}))
    if table == "churn_training_dataset":
        rules.append(Rule("in_set", "label", {"value_set": [0, 1]}))
        rules.append(Rule("mean_between", "label", {"min_value": 0.0005, "max_value": 0.6}))
    if table == "customer_month":
        rules.append(Rule("compound_unique", kwargs={"column_list": ["customer_id", "month"]}))
    return rules


def with_missing_feature_count(df: DataFrame, feature_columns: list[str]) -> DataFrame:
    """Add the per-row count of missing features that gold's gate expects to be 0."""
    from pyspark.sql import functions as F

    missing = sum((F.col(c).isNull() | F.isnan(F.col(c))).cast("int") for c in feature_columns)
    return df.withColumn(NULL_FEATURES, missing)


def run_gate(
    ctx: Any, layer: str, table: str, df: DataFrame, rules: list[Rule], reports: list[Any] | None = None
) -> dict[str, Any]:
    """Save the suite, run its checkpoint on ``df`` and return a JSON-able summary.

    The validation result is kept in the project's store either way. ``reports`` collects the ids of what
    to render, so a layer builds Data Docs once for all its tables (:func:`update_data_docs`); without it
    the docs are updated here. Raises :class:`GateFailed` when any expectation fails.
    """
    import great_expectations as gx

    name = f"{layer}.{table}"
    try:
        source = ctx.data_sources.get(DATASOURCE)
    except KeyError:
        # persist=False: GX would otherwise cache every batch and never release it
        source = ctx.data_sources.add_spark(name=DATASOURCE, persist=False)
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
    try:
        batch = asset.get_batch_definition(BATCH)
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe(BATCH)
    suite = gx.ExpectationSuite(name=name, expectations=[_expectation(r) for r in rules])
    suite = ctx.suites.add_or_update(suite)
    validation = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    checkpoint = ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[validation],
            # SUMMARY without sample values: keeps counts and observed values at about half the cost
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": with_derived_columns(df, rules)})
    rendered = _report_ids(name, result)
    if reports is None:
        update_data_docs(ctx, rendered)
    else:
        reports.extend(rendered)
    summary = summarize(result)
    if not summary["success"]:
        raise GateFailed(layer, table, [e for e in summary["expectations"] if not e["success"]])
    return summary


def _report_ids(suite_name: str, result: Any) -> list[Any]:
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    return [*result.run_results.keys(), ExpectationSuiteIdentifier(name=suite_name)]


def update_data_docs(ctx: Any, reports: list[Any]) -> None:
    """Render the given validation results and suites into the local Data Docs site, index included.

    One build per layer run: the index is re-read from every stored result, so building it once per
    table cost a layer about as much as some of its gates.
    """
    if reports:
        ctx.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=reports)


def summarize(result: Any) -> dict[str, Any]:
    """A checkpoint result as a small JSON-able dict: overall success and one line per expectation."""
    out: dict[str, Any] = {"success": bool(result.success), "expectations": []}
    for run in result.run_results.values():
        out["statistics"] = run.statistics
        for r in run.results:
            res = r.result or {}
            item = {
                "type": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column"),
                "success": bool(r.success),
            }
            for key in ("observed_value", "element_count", "unexpected_count", "unexpected_percent"):
                if key in res:
                    item[key] = res[key]
            error = _exception_message(r.exception_info or {})
            if error:
                item["exception"] = error
            out["expectations"].append(item)
    return json.loads(json.dumps(out, default=str))


def _exception_message(info: dict[str, Any]) -> str:
    """GX nests a failed metric's error under its metric id; flatten either shape to one message."""
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return "; ".join(str(i.get("exception_message")) for i in infos if i.get("raised_exception"))


def contract_by_table() -> dict[str, FileContract]:
    """Bronze table name -> the contract it came from."""
    return {c.name: c for c in RAW_FILES}


__all__ = [
    "GateFailed",
    "Rule",
    "bronze_rules",
    "context",
    "gold_rules",
    "none_missing",
    "run_gate",
    "silver_rules",
    "update_data_docs",
]
