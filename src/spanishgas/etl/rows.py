"""The ETL's row vocabulary, shared by both engines and every layer: the names of the columns bronze adds
(status, quarantine reason, raw text, lineage), the contract's row checks in the order a row's first
failure is reported, how delivered lines are counted from raw bytes, and the error a delivery that cannot
be ingested raises. The stage modules import from here; this module imports no stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from spanishgas.errors import PlatformError

if TYPE_CHECKING:
    from spanishgas.contracts import DeliveryWindow, FileContract

REASON = "_quarantine_reason"
RAW_TEXT = "_raw"
EXTRA = "_extra_field"
CORRUPT = "_corrupt_record"
STATUS = "status"
# Which values of an accepted row were outside the vocabulary and became its unknown token ("col=value;...").
MAPPED = "_mapped_to_unknown"
METADATA_COLUMNS = ("_run_id", "_source_file", "_source_sha256", "_ingested_at")
# The delivery meters gas in m3; silver reports energy in kWh (the utility's conversion factor).
GAS_KWH_PER_M3 = 11.0
IRREGULAR = "_irregular_line"  # the original text of a row with values a join would lose


class DeliveryError(PlatformError, ValueError):
    """A delivered file cannot be ingested at all; the message names the file and the problem."""


@dataclass(frozen=True)
class ContractCheck:
    """One way a row can break its file's contract; the label is the quarantine reason it gets.

    Both engines evaluate the same list in the same order (Spark for the small files, Arrow for the large
    CSV files), so a row gets the same first reason whichever path read it.
    """

    kind: str  # extra | corrupt | missing | bad_type | pattern | below | above | not_allowed | outside
    label: str
    column: str = ""
    bound: float | None = None
    allowed: tuple[str | int, ...] = ()
    pattern: str = ""
    earliest: date | datetime | None = None
    latest: date | datetime | None = None


def contract_checks(
    contract: FileContract, extra: bool, corrupt: bool, window: DeliveryWindow | None = None, filename: str = ""
) -> list[ContractCheck]:
    """The contract's row checks in the order a row's first failure is reported. Dates are checked against
    ``window`` (the delivery's period) when there is one; readings against the year ``filename`` carries."""
    checks: list[ContractCheck] = []
    if extra:
        checks.append(ContractCheck("extra", "too many fields"))
    if corrupt:
        checks.append(ContractCheck("corrupt", "unparseable record"))
    required = set(contract.key) | {c.name for c in contract.columns if not c.nullable}
    for c in contract.columns:
        if c.name in required:
            checks.append(ContractCheck("missing", f"missing {c.name}", c.name))
    for c in contract.columns:
        checks.append(ContractCheck("bad_type", f"bad {c.type.value} in {c.name}", c.name))
    for c in contract.columns:
        if c.pattern:
            checks.append(ContractCheck("pattern", f"{c.name} not in the utility's format", c.name, pattern=c.pattern))
    for c in contract.columns:
        if c.minimum is not None:
            checks.append(ContractCheck("below", f"{c.name} below {c.minimum:g}", c.name, bound=c.minimum))
        if c.maximum is not None:
            checks.append(ContractCheck("above", f"{c.name} above {c.maximum:g}", c.name, bound=c.maximum))
        if c.allowed and not c.unknown_token:  # with a token, an unknown value is mapped, not quarantined
            checks.append(
                ContractCheck("not_allowed", f"{c.name} not in the allowed values", c.name, allowed=c.allowed)
            )
        earliest, latest = window.bounds(c, filename) if window is not None else (None, None)
        if earliest is not None or latest is not None:
            where = "the file's year" if c.in_file_year else "the delivery's period"
            label = f"{c.name} outside {where}"
            checks.append(ContractCheck("outside", label, c.name, earliest=earliest, latest=latest))
    return checks


# A line of nothing but whitespace is blank. Spark's CSV reader skips a line whose Java `trim()` is empty,
# and Java trims every character up to U+0020, so that is "whitespace" here too (a whitespace-only line
# used to be counted as a row, and a delivery holding one failed reconciliation).
_SPACE = bytes(c for c in range(0x21) if c != 0x0A)
_BLANK_LINE = re.compile(rb"\n(?=[\x00-\x09\x0b-\x20]*\n)")


def blank_lines(joined: bytes, carried: int) -> int:
    """Blank lines whose terminator is at or after byte ``carried`` (those before were counted with the
    previous block). Overlapping runs count one each, which ``bytes.count`` would not."""
    # with the whitespace taken out, a blank line leaves two line ends side by side: one cheap search
    if b"\n\n" not in joined.translate(None, _SPACE):
        return 0  # the usual case: no regex pass over the block
    count = 0
    for match in _BLANK_LINE.finditer(joined):
        end = joined.index(b"\n", match.start() + 1)  # the blank line's own terminator
        count += end >= carried
    return count


def last_line_counts(data: bytes) -> int:
    """1 when ``data`` ends in a line without a terminator that holds something besides whitespace."""
    if not data or data.endswith(b"\n"):
        return 0
    return 1 if data[data.rfind(b"\n") + 1 :].strip(_SPACE) else 0


def line_carry(joined: bytes) -> bytes:
    """What the next block needs of this one to see a blank line across the boundary, in at most 2 bytes:
    the line in progress is either not blank (``x``), or a line end and maybe some whitespace."""
    cut = joined.rfind(b"\n")
    tail = joined[cut + 1 :]
    if tail.strip(_SPACE):
        return b"x"
    return (b"\n" if cut >= 0 else b"") + (b" " if tail else b"")


def count_data_lines(lines_from_a_line_start: bytes) -> int:
    """Non-empty lines in bytes that start at the start of a line (a line of nothing but whitespace, LF or
    CRLF, is no row)."""
    data = lines_from_a_line_start
    if not data:
        return 0
    lines = data.count(b"\n") + last_line_counts(data)
    # the previous line's terminator in front, so a blank first line is seen like any other
    return lines - blank_lines(b"\n" + data, 1)
