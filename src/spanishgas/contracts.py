"""Data contracts of the seven raw files exactly as the utility delivers them.

This module is the single source of truth for file names, column names, types, units, nullability and
keys. Bronze ingestion enforces it, the Great Expectations suites are derived from it, the generator
writes to it, and ``docs/data_contracts.md`` documents it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
class PeriodBound:
    """Where a date column may lie against the delivery's period (the years its hourly files cover).

    ``days_before_start`` / ``days_after_end``: how far outside the period a value may still be (None: no
    limit on that side); the delivery's tolerance (``etl.period_tolerance_days``) is added to both."""

    days_before_start: int | None = 0
    days_after_end: int | None = 0


@dataclass(frozen=True)
class Column:
    """One delivered column and the rules its values must keep.

    ``minimum``/``maximum`` bound numbers; ``pattern`` is a regular expression the text must match;
    ``allowed`` is the vocabulary, and with ``unknown_token`` a value outside it is mapped to that token
    (and counted) instead of quarantining the row; ``period`` bounds a date against the delivery's period,
    ``in_file_year`` a timestamp to the year the file's name carries."""

    name: str
    type: ColumnType
    description: str
    unit: str = ""
    nullable: bool = False
    allowed: tuple[str | int, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str = ""
    unknown_token: str = ""
    period: PeriodBound | None = None
    in_file_year: bool = False


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
# Spain's seventeen autonomous communities and two autonomous cities, as snake_case tokens.
REGIONS = (
    "andalucia",
    "aragon",
    "asturias",
    "canarias",
    "cantabria",
    "castilla_la_mancha",
    "castilla_y_leon",
    "cataluna",
    "ceuta",
    "comunidad_de_madrid",
    "comunidad_valenciana",
    "extremadura",
    "galicia",
    "illes_balears",
    "la_rioja",
    "melilla",
    "navarra",
    "pais_vasco",
    "region_de_murcia",
)
UNKNOWN = "unknown"
CUSTOMER_ID_PATTERN = r"^C\d{5,}$"

# Plausibility bounds (docs/data_contracts.md says how each was set). An hour's electricity cannot exceed
# the largest supply the contract admits (MAX_CONTRACTED_POWER_KW) drawn for the whole hour by more than
# POWER_HEADROOM; bronze reads each file on its own, so the limit is the contract's, not the customer's.
MAX_CONTRACTED_POWER_KW = 1000.0
POWER_HEADROOM = 3.0
MAX_HOURLY_ELEC_KWH = MAX_CONTRACTED_POWER_KW * 1.0 * POWER_HEADROOM
MAX_HOURLY_GAS_M3 = 1000.0
# Meter corrections arrive as small negative readings (silver clips them to 0); these floors keep them.
MIN_HOURLY_ELEC_KWH = -100.0
MIN_HOURLY_GAS_M3 = -10.0
MAX_ENERGY_PRICE_EUR_KWH = 2.0
MAX_GAS_PRICE_EUR_M3 = 10.0
MAX_FIXED_EUR_MONTH = 10_000.0
MAX_GAS_FIXED_EUR_YEAR = 100_000.0
# An annual contract renews at most a year after the delivery's period (plus the tolerance).
RENEWAL_HORIZON_DAYS = 366
IN_PERIOD = PeriodBound(0, 0)
NOT_AFTER_PERIOD = PeriodBound(None, 0)


def customer_id_column(description: str = "Customer identifier, C + zero-padded digits.") -> Column:
    """The customer identifier every file carries, in the utility's format."""
    return Column("customer_id", ColumnType.STRING, description, pattern=CUSTOMER_ID_PATTERN)


CHURN_LABEL = FileContract(
    name="churn_label",
    pattern="churn_label.csv",
    format="csv",
    description="One row per customer of the delivery: did the customer leave during the delivered period.",
    key=("customer_id",),
    optional_columns=("churn_effective_date", "label_date"),
    columns=(
        customer_id_column(),
        Column("churn", ColumnType.FLAG, "1 when the customer left on or before label_date.", allowed=(0, 1)),
        Column(
            "churn_effective_date",
            ColumnType.DATE,
            "Day the supply ended (set when churn = 1). Optional: older deliveries lack it.",
            nullable=True,
            period=PeriodBound(0, RENEWAL_HORIZON_DAYS),
        ),
        Column(
            "label_date",
            ColumnType.DATE,
            "Date the labels were taken. Optional.",
            nullable=True,
            period=PeriodBound(0, RENEWAL_HORIZON_DAYS),
        ),
    ),
)

CUSTOMER_ATTRIBUTES = FileContract(
    name="customer_attributes",
    pattern="customer_attributes.csv",
    format="csv",
    description="One row per customer: supply point, location and how the customer was acquired.",
    key=("customer_id",),
    columns=(
        customer_id_column(),
        Column(
            "contracted_power_kw",
            ColumnType.FLOAT,
            "Contracted electrical power.",
            unit="kW",
            minimum=0.0,
            maximum=MAX_CONTRACTED_POWER_KW,
        ),
        Column("is_industrial", ColumnType.FLAG, "1 for business supplies (SME or corporate).", allowed=(0, 1)),
        Column("is_second_residence", ColumnType.FLAG, "1 when the home is a second residence.", allowed=(0, 1)),
        Column("province_code", ColumnType.INT, "INE province code (1-52).", minimum=1, maximum=52),
        Column(
            "region",
            ColumnType.STRING,
            "Autonomous community of the province (snake_case token).",
            allowed=(*REGIONS, UNKNOWN),
            unknown_token=UNKNOWN,
        ),
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
            allowed=(*SALES_CHANNELS, UNKNOWN),
            unknown_token=UNKNOWN,
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
        customer_id_column(),
        Column(
            "customer_first_activation_date",
            ColumnType.DATE,
            "First day the customer was supplied.",
            period=NOT_AFTER_PERIOD,
        ),
        Column(
            "contract_start_date",
            ColumnType.DATE,
            "Start of the current (or last) annual contract.",
            period=NOT_AFTER_PERIOD,
        ),
        Column(
            "last_product_change_date",
            ColumnType.DATE,
            "Last change of product (tariff); empty when never changed.",
            nullable=True,
            period=NOT_AFTER_PERIOD,
        ),
        Column(
            "next_renewal_date",
            ColumnType.DATE,
            "End of the current contract; in the past when it expired without renewal.",
            period=PeriodBound(None, RENEWAL_HORIZON_DAYS),
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
        customer_id_column(),
        Column(
            "timestamp",
            ColumnType.TIMESTAMP,
            "Start of the hour, Spanish local wall-clock time, in the year the file is named after.",
            in_file_year=True,
        ),
        Column(
            "consumption_elec_kwh",
            ColumnType.FLOAT,
            "Electricity used in the hour (small negatives are meter corrections).",
            unit="kWh",
            minimum=MIN_HOURLY_ELEC_KWH,
            maximum=MAX_HOURLY_ELEC_KWH,
        ),
        Column(
            "consumption_gas_m3",
            ColumnType.FLOAT,
            "Gas used in the hour (0 for electricity-only customers).",
            unit="m3",
            minimum=MIN_HOURLY_GAS_M3,
            maximum=MAX_HOURLY_GAS_M3,
        ),
    ),
)

_PRICE = "EUR/kWh"


def _money(name: str, description: str, unit: str, maximum: float, nullable: bool = False) -> Column:
    """A price, fee or cost: never negative, never above its stated bound."""
    return Column(name, ColumnType.FLOAT, description, unit=unit, nullable=nullable, minimum=0.0, maximum=maximum)


PRICE_HISTORY = FileContract(
    name="price_history",
    pattern="price_history.csv",
    format="csv",
    description="One row per customer and month: the prices billed and the fixed costs of supplying them. "
    "A price of 0 means missing.",
    key=("customer_id", "pricing_date"),
    columns=(
        customer_id_column("Customer identifier (a few rows arrive blank; bronze quarantines them)."),
        Column("pricing_date", ColumnType.DATE, "First day of the month the prices apply to.", period=IN_PERIOD),
        _money("variable_price_tier1_eur_kwh", "Peak-period (P1) energy price.", _PRICE, MAX_ENERGY_PRICE_EUR_KWH),
        _money("variable_price_tier2_eur_kwh", "Standard-period (P2) energy price.", _PRICE, MAX_ENERGY_PRICE_EUR_KWH),
        _money("variable_price_tier3_eur_kwh", "Off-peak (P3) energy price.", _PRICE, MAX_ENERGY_PRICE_EUR_KWH),
        _money("elec_fixed_fee_eur_month", "Fixed electricity fee billed.", "EUR/month", MAX_FIXED_EUR_MONTH),
        _money("elec_fixed_cost_eur_month", "Fixed cost of the supply.", "EUR/month", MAX_FIXED_EUR_MONTH),
        _money(
            "gas_variable_price_eur_m3",
            "Gas energy price (0 or empty without gas).",
            "EUR/m3",
            MAX_GAS_PRICE_EUR_M3,
            nullable=True,
        ),
        _money(
            "gas_fixed_revenue_eur_year",
            "Fixed gas fee billed per year.",
            "EUR/year",
            MAX_GAS_FIXED_EUR_YEAR,
            nullable=True,
        ),
        _money(
            "gas_fixed_cost_eur_year",
            "Fixed cost of the gas supply per year.",
            "EUR/year",
            MAX_GAS_FIXED_EUR_YEAR,
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
        Column("month", ColumnType.MONTH, "Month, YYYY-MM.", period=IN_PERIOD),
        Column("province", ColumnType.INT, "INE province code.", minimum=1, maximum=52),
        _money("elec_var_cost_eur_kwh", "Wholesale electricity cost.", _PRICE, MAX_ENERGY_PRICE_EUR_KWH),
        _money("gas_var_cost_eur_m3", "Wholesale gas cost.", "EUR/m3", MAX_GAS_PRICE_EUR_M3),
        _money("peaje_elec_eur_kwh", "Electricity network toll (peaje).", _PRICE, MAX_ENERGY_PRICE_EUR_KWH),
    ),
)

CUSTOMER_INTERACTIONS = FileContract(
    name="customer_interactions",
    pattern="customer_interactions.json",
    format="json",
    description="Call-center and office contacts: a JSON array of records, free English text by agents.",
    key=("customer_id", "date", "interaction_summary"),
    columns=(
        customer_id_column(),
        Column("date", ColumnType.DATE, "Day of the contact.", period=NOT_AFTER_PERIOD),
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


_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def file_year(filename: str) -> int | None:
    """The year a file's name carries (``consumption_hourly_2024.csv``: 2024), or None."""
    found = _YEAR_IN_NAME.findall(filename)
    return int(found[-1]) if len(found) == 1 else None


@dataclass(frozen=True)
class DeliveryWindow:
    """The period a delivery covers (the years its hourly files are named after) and the tolerances its
    dates and readings are checked with."""

    first_day: date
    last_day: date
    tolerance_days: int = 31
    reading_tolerance_hours: int = 1

    @classmethod
    def of_files(
        cls, filenames: list[str], tolerance_days: int = 31, reading_tolerance_hours: int = 1
    ) -> DeliveryWindow | None:
        """The window of a delivery from its file names; None when no hourly file names its year."""
        years = [file_year(n) for n in filenames if CONSUMPTION_HOURLY.matches(n)]
        known = [y for y in years if y is not None]
        if not known:
            return None
        return cls(date(min(known), 1, 1), date(max(known), 12, 31), tolerance_days, reading_tolerance_hours)

    def bounds(self, column: Column, filename: str) -> tuple[date | datetime | None, date | datetime | None]:
        """Earliest and latest value ``column`` may hold in ``filename`` (None: no limit on that side)."""
        if column.in_file_year:
            year = file_year(filename)
            if year is None:
                return None, None
            slack = timedelta(hours=self.reading_tolerance_hours)
            return datetime(year, 1, 1) - slack, datetime(year, 12, 31, 23) + slack
        bound = column.period
        if bound is None:
            return None, None
        slack = timedelta(days=self.tolerance_days)
        low = None if bound.days_before_start is None else self.first_day - timedelta(bound.days_before_start) - slack
        high = None if bound.days_after_end is None else self.last_day + timedelta(bound.days_after_end) + slack
        return low, high


def contract_for(filename: str) -> FileContract:
    """The contract a delivered file name belongs to."""
    for contract in RAW_FILES:
        if contract.matches(filename):
            return contract
    raise KeyError(f"{filename!r} is not one of the delivered files ({', '.join(c.pattern for c in RAW_FILES)})")


def _period_words(bound: PeriodBound) -> str:
    """A period bound as the contracts page states it."""
    start = (
        "any time before the period"
        if bound.days_before_start is None
        else f"from {bound.days_before_start} days before the period"
    )
    end = "any time after" if bound.days_after_end is None else f"to {bound.days_after_end} days after it"
    return f"{start} {end} (plus the tolerance)"


def _plausibility_markdown() -> list[str]:
    """How the plausibility rules were set: the profile of the real delivery kept, the impossible caught."""
    return [
        "## Plausibility rules",
        "",
        "Bronze quarantines a row that breaks one (reason = the rule's name) and counts it in the run's",
        "manifest, except for vocabularies with an unknown token: a value outside them becomes that token,",
        "counted per column with the commonest values seen (`mapped_to_unknown` in the manifest), so that a",
        "customer is not lost for a channel or region spelt in a new way.",
        "",
        f"- Electricity per hour: at most {MAX_HOURLY_ELEC_KWH:g} kWh, the largest supply the contract admits",
        f"  ({MAX_CONTRACTED_POWER_KW:g} kW) drawn for the whole hour, times {POWER_HEADROOM:g}. Bronze reads each",
        "  file alone, so the limit is the contract's, not the customer's: the real delivery has customers",
        "  drawing far more than their contracted power, and a per-customer limit would quarantine them.",
        f"  The largest real customer averages about 127 kWh per hour. Floor {MIN_HOURLY_ELEC_KWH:g} kWh: meter",
        "  corrections arrive as small negatives (0.26 % of the real rows, mean -0.9 kWh); silver clips them.",
        f"- Gas per hour: {MIN_HOURLY_GAS_M3:g} .. {MAX_HOURLY_GAS_M3:g} m3 (the largest real gas customer uses",
        "  about 10 m3 an hour on average; the real negatives reach -0.23).",
        f"- Energy prices and costs 0 .. {MAX_ENERGY_PRICE_EUR_KWH:g} EUR/kWh (the real peak price tops out near",
        f"  0.33; 0 means missing), gas 0 .. {MAX_GAS_PRICE_EUR_M3:g} EUR/m3, fixed fees and costs",
        f"  0 .. {MAX_FIXED_EUR_MONTH:g} EUR/month, fixed gas terms 0 .. {MAX_GAS_FIXED_EUR_YEAR:g} EUR/year.",
        "- Dates: the delivery's period is the years its hourly files are named after (2024 for",
        "  `consumption_hourly_2024.csv`); each date column states how far outside it a value may lie, plus the",
        "  tolerance `etl.period_tolerance_days` (31). Readings must lie in their own file's year, give or take",
        "  `etl.reading_tolerance_hours` (1). A delivery whose hourly files name no year is not date-checked",
        "  (its manifest's `delivery_window` is null).",
        f"- Identifiers match `{CUSTOMER_ID_PATTERN}` (the utility's C + zero-padded digits).",
        "",
        "Snapshot files (one row per key): lines repeated verbatim are dropped and counted in silver; rows",
        "that conflict on the key are all quarantined (`conflicting duplicate`) and the delivery goes on, unless",
        "more than `etl.max_conflicting_share` (1 %) of a file's rows conflict: then the silver run fails naming",
        "the file, the key and the share, and publishes nothing.",
        "",
    ]


def contracts_markdown() -> str:
    """Render every contract as the Markdown tables of ``docs/data_contracts.md``."""
    lines = [
        "# Raw data contracts",
        "",
        "Generated from `src/spanishgas/contracts.py` by `spanishgas contracts --markdown`; edit the code, not",
        "this page. All CSV files are comma-separated UTF-8 with a header row; empty cells are nulls.",
        "",
        *_plausibility_markdown(),
    ]
    for c in RAW_FILES:
        lines += [f"## `{c.pattern}` ({c.format})", "", c.description, "", f"Key: `{', '.join(c.key)}`.", ""]
        lines += ["| column | type | unit | nullable | meaning | allowed / range |", "|---|---|---|---|---|---|"]
        for col in c.columns:
            rng = ", ".join(str(a) for a in col.allowed)
            if col.unknown_token:
                rng += f" (any other value becomes `{col.unknown_token}`)"
            if col.minimum is not None or col.maximum is not None:
                low = "" if col.minimum is None else col.minimum
                high = "" if col.maximum is None else col.maximum
                rng = f"{low} .. {high}"
            if col.pattern:
                rng = f"matches `{col.pattern}`"
            if col.in_file_year:
                rng = "in the year of the file's name"
            elif col.period is not None:
                rng = _period_words(col.period)
            optional = " (optional column)" if col.name in c.optional_columns else ""
            lines.append(
                f"| `{col.name}` | {col.type.value} | {col.unit} | {'yes' if col.nullable else 'no'} "
                f"| {col.description}{optional} | {rng} |"
            )
        lines.append("")
    return "\n".join(lines)
