"""Data contracts of the seven raw files exactly as the utility delivers them.

This module is the single source of truth for file names, column names, types, units, nullability and
keys. Bronze ingestion enforces it, the Great Expectations suites are derived from it, the generator
writes to it, and ``docs/data_contracts.md`` documents it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class ColumnType(StrEnum):
    """Logical type of a raw column as delivered (all CSV cells arrive as text)."""

    STRING = "string"
    INT = "int"
    FLAG = "flag"  # integer 0/1
    FLOAT = "float"
    DATE = "date"  # YYYY-MM-DD
    MONTH = "month"  # YYYY-MM
    TIMESTAMP = "timestamp"  # YYYY-MM-DD HH:MM:SS, Spanish local wall-clock time, no offset


@dataclass(frozen=True)
class Column:
    """One delivered column."""

    name: str
    type: ColumnType
    description: str
    unit: str = ""
    nullable: bool = False
    allowed: tuple[str | int, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class FileContract:
    """One delivered file: its name (or glob), format, columns and key."""

    name: str
    pattern: str
    format: Literal["csv", "json"]
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        """Names in delivery order."""
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Names that must be present in every delivery."""
        return [c.name for c in self.columns if c.name not in self.optional_columns]

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def matches(self, filename: str) -> bool:
        """Whether a file name belongs to this contract."""
        return fnmatch.fnmatch(filename, self.pattern)


SALES_CHANNELS = ("presencial_comercial", "desconocido", "comparador", "oficina", "telemarketing", "web_propia")
INTERACTION_CHANNELS = ("phone", "email", "chat", "office", "web_form")
CUSTOMER_ID_PATTERN = r"^C\d{5,}$"

CHURN_LABEL = FileContract(
    name="churn_label",
    pattern="churn_label.csv",
    format="csv",
    description="One row per customer of the delivery: did the customer leave during the delivered period.",
    key=("customer_id",),
    optional_columns=("churn_effective_date", "label_date"),
    columns=(
        Column("customer_id", ColumnType.STRING, "Customer identifier, C + zero-padded digits."),
        Column("churn", ColumnType.FLAG, "1 when the customer left on or before label_date.", allowed=(0, 1)),
        Column(
            "churn_effective_date",
            ColumnType.DATE,
            "Day the supply ended (set when churn = 1). Optional: older deliveries lack it.",
            nullable=True,
        ),
        Column("label_date", ColumnType.DATE, "Date the labels were taken. Optional.", nullable=True),
    ),
)

CUSTOMER_ATTRIBUTES = FileContract(
    name="customer_attributes",
    pattern="customer_attributes.csv",
    format="csv",
    description="One row per customer: supply point, location and how the customer was acquired.",
    key=("customer_id",),
    columns=(
        Column("customer_id", ColumnType.STRING, "Customer identifier."),
        Column(
            "contracted_power_kw",
            ColumnType.FLOAT,
            "Contracted electrical power.",
            unit="kW",
            minimum=0.0,
            maximum=1000.0,
        ),
        Column("is_industrial", ColumnType.FLAG, "1 for business supplies (SME or corporate).", allowed=(0, 1)),
        Column("is_second_residence", ColumnType.FLAG, "1 when the home is a second residence.", allowed=(0, 1)),
        Column("province_code", ColumnType.INT, "INE province code (1-52).", minimum=1, maximum=52),
        Column("region", ColumnType.STRING, "Autonomous community of the province."),
        Column(
            "is_high_competition_province",
            ColumnType.FLAG,
            "1 where rival retailers compete hard for customers.",
            allowed=(0, 1),
        ),
        Column("is_urban", ColumnType.FLAG, "1 for an urban supply point.", allowed=(0, 1)),
        Column(
            "sales_channel",
            ColumnType.STRING,
            "How the customer was acquired (Spanish tokens).",
            allowed=(*SALES_CHANNELS, "unknown"),
        ),
    ),
)

CUSTOMER_CONTRACTS = FileContract(
    name="customer_contracts",
    pattern="customer_contracts.csv",
    format="csv",
    description="One row per customer: the contract as of the delivery (annual contracts, tacit renewal).",
    key=("customer_id",),
    columns=(
        Column("customer_id", ColumnType.STRING, "Customer identifier."),
        Column("customer_first_activation_date", ColumnType.DATE, "First day the customer was supplied."),
        Column("contract_start_date", ColumnType.DATE, "Start of the current (or last) annual contract."),
        Column(
            "last_product_change_date",
            ColumnType.DATE,
            "Last change of product (tariff); empty when never changed.",
            nullable=True,
        ),
        Column(
            "next_renewal_date",
            ColumnType.DATE,
            "End of the current contract; in the past when it expired without renewal.",
        ),
    ),
)

CONSUMPTION_HOURLY = FileContract(
    name="consumption_hourly",
    pattern="consumption_hourly_*.csv",
    format="csv",
    description="Hourly meter readings per customer, one file per year, Spanish local time.",
    key=("customer_id", "timestamp"),
    columns=(
        Column("customer_id", ColumnType.STRING, "Customer identifier."),
        Column("timestamp", ColumnType.TIMESTAMP, "Start of the hour, Spanish local wall-clock time."),
        Column("consumption_elec_kwh", ColumnType.FLOAT, "Electricity used in the hour.", unit="kWh"),
        Column(
            "consumption_gas_m3",
            ColumnType.FLOAT,
            "Gas used in the hour (0 for electricity-only customers).",
            unit="m3",
        ),
    ),
)

_PRICE = "EUR/kWh"
PRICE_HISTORY = FileContract(
    name="price_history",
    pattern="price_history.csv",
    format="csv",
    description="One row per customer and month: the prices billed and the fixed costs of supplying them. "
    "A price of 0 means missing.",
    key=("customer_id", "pricing_date"),
    columns=(
        Column(
            "customer_id", ColumnType.STRING, "Customer identifier (a few rows arrive blank; bronze quarantines them)."
        ),
        Column("pricing_date", ColumnType.DATE, "First day of the month the prices apply to."),
        Column("variable_price_tier1_eur_kwh", ColumnType.FLOAT, "Peak-period (P1) energy price.", unit=_PRICE),
        Column("variable_price_tier2_eur_kwh", ColumnType.FLOAT, "Standard-period (P2) energy price.", unit=_PRICE),
        Column("variable_price_tier3_eur_kwh", ColumnType.FLOAT, "Off-peak (P3) energy price.", unit=_PRICE),
        Column("elec_fixed_fee_eur_month", ColumnType.FLOAT, "Fixed electricity fee billed.", unit="EUR/month"),
        Column("elec_fixed_cost_eur_month", ColumnType.FLOAT, "Fixed cost of the supply.", unit="EUR/month"),
        Column(
            "gas_variable_price_eur_m3",
            ColumnType.FLOAT,
            "Gas energy price (0 or empty without gas).",
            unit="EUR/m3",
            nullable=True,
        ),
        Column(
            "gas_fixed_revenue_eur_year",
            ColumnType.FLOAT,
            "Fixed gas fee billed per year.",
            unit="EUR/year",
            nullable=True,
        ),
        Column(
            "gas_fixed_cost_eur_year",
            ColumnType.FLOAT,
            "Fixed cost of the gas supply per year.",
            unit="EUR/year",
            nullable=True,
        ),
    ),
)

COSTS_BY_PROVINCE = FileContract(
    name="costs_by_province_month",
    pattern="costs_by_province_month.csv",
    format="csv",
    description="Energy costs and network tolls per province and month.",
    key=("month", "province"),
    columns=(
        Column("month", ColumnType.MONTH, "Month, YYYY-MM."),
        Column("province", ColumnType.INT, "INE province code.", minimum=1, maximum=52),
        Column("elec_var_cost_eur_kwh", ColumnType.FLOAT, "Wholesale electricity cost.", unit=_PRICE, minimum=0),
        Column("gas_var_cost_eur_m3", ColumnType.FLOAT, "Wholesale gas cost.", unit="EUR/m3", minimum=0),
        Column("peaje_elec_eur_kwh", ColumnType.FLOAT, "Electricity network toll (peaje).", unit=_PRICE, minimum=0),
    ),
)

CUSTOMER_INTERACTIONS = FileContract(
    name="customer_interactions",
    pattern="customer_interactions.json",
    format="json",
    description="Call-center and office contacts: a JSON array of records, free English text by agents.",
    key=("customer_id", "date", "interaction_summary"),
    columns=(
        Column("customer_id", ColumnType.STRING, "Customer identifier."),
        Column("date", ColumnType.DATE, "Day of the contact."),
        Column("channel", ColumnType.STRING, "Contact channel.", allowed=INTERACTION_CHANNELS),
        Column("interaction_summary", ColumnType.STRING, "The agent's note, free English text."),
    ),
)

RAW_FILES: tuple[FileContract, ...] = (
    CHURN_LABEL,
    CUSTOMER_ATTRIBUTES,
    CUSTOMER_CONTRACTS,
    CONSUMPTION_HOURLY,
    PRICE_HISTORY,
    COSTS_BY_PROVINCE,
    CUSTOMER_INTERACTIONS,
)


def contract_for(filename: str) -> FileContract:
    """The contract a delivered file name belongs to."""
    for contract in RAW_FILES:
        if contract.matches(filename):
            return contract
    raise KeyError(f"{filename!r} is not one of the delivered files ({', '.join(c.pattern for c in RAW_FILES)})")


def contracts_markdown() -> str:
    """Render every contract as the Markdown tables of ``docs/data_contracts.md``."""
    lines = [
        "# Raw data contracts",
        "",
        "Generated from `src/spanishgas/contracts.py` by `spanishgas contracts --markdown`; edit the code, not",
        "this page. All CSV files are comma-separated UTF-8 with a header row; empty cells are nulls.",
        "",
    ]
    for c in RAW_FILES:
        lines += [f"## `{c.pattern}` ({c.format})", "", c.description, "", f"Key: `{', '.join(c.key)}`.", ""]
        lines += ["| column | type | unit | nullable | meaning | allowed / range |", "|---|---|---|---|---|---|"]
        for col in c.columns:
            rng = ", ".join(str(a) for a in col.allowed)
            if col.minimum is not None or col.maximum is not None:
                low = "" if col.minimum is None else col.minimum
                high = "" if col.maximum is None else col.maximum
                rng = f"{low} .. {high}"
            optional = " (optional column)" if col.name in c.optional_columns else ""
            lines.append(
                f"| `{col.name}` | {col.type.value} | {col.unit} | {'yes' if col.nullable else 'no'} "
                f"| {col.description}{optional} | {rng} |"
            )
        lines.append("")
    return "\n".join(lines)
