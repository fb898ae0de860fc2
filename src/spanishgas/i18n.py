"""What agents read, in Spanish and English: gettext message catalogs (``resources/locale/<lang>/
LC_MESSAGES/answers.po``, read with Babel, plural forms included) and numbers formatted the way each
language writes them (Babel's CLDR data: "29 %" and "0,213" in Spanish, "29%" and "0.213" in English).

Messages are keys ("reason.peak_share"), never English text used as a key, so a key missing from one
catalog is an error (:class:`MissingMessage`), not a silent fall back to another language.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

Language = Literal["es", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "en")
DOMAIN = "answers"
# Units a number in a message may carry; each language formats them its own way.
Unit = Literal["int", "percent", "kwh", "kw", "eur", "eur_kwh"]
_PATTERNS = {"int": "#,##0", "kwh": "#,##0", "kw": "#,##0.#", "eur": "#,##0.00", "eur_kwh": "0.000"}
# Decimals each unit shows (a percent: of the share, so 0.2915 shows as 29 %).
_DIGITS = {"int": 0, "kwh": 0, "kw": 1, "eur": 2, "eur_kwh": 3, "percent": 2}


class MissingMessage(KeyError):
    """A message key that a language's catalog does not hold."""


@dataclass(frozen=True)
class Number:
    """A figure in a message, formatted per language when the message is rendered."""

    value: float
    unit: Unit = "int"


@dataclass(frozen=True)
class Message:
    """A message key with its parameters; ``count`` picks the plural form (and is the ``{count}``
    parameter)."""

    key: str
    params: tuple[tuple[str, Number | str], ...] = ()
    count: int | None = None

    def render(self, lang: Language) -> str:
        """The message in ``lang``."""
        return render(lang, self)


def message(key: str, count: int | None = None, **params: Number | str | Message) -> Message:
    """A :class:`Message`; a parameter that is itself a message is rendered in the same language."""
    return Message(key, tuple(sorted(params.items())), count)  # type: ignore[arg-type]


@cache
def _parsed(lang: Language) -> Any:
    from babel.messages.pofile import read_po

    if lang not in LANGUAGES:
        raise ValueError(f"no catalog for language {lang!r}; known: {', '.join(LANGUAGES)}")
    path = resources.files("spanishgas.resources").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    return read_po(io.StringIO(path.read_text(encoding="utf-8")), locale=lang)


@cache
def catalog(lang: Language) -> gettext.GNUTranslations:
    """A language's compiled catalog (read and compiled in memory once per process)."""
    from babel.messages.mofile import write_mo

    compiled = io.BytesIO()
    write_mo(compiled, _parsed(lang))
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def keys(lang: Language) -> frozenset[str]:
    """Every message key a language's catalog holds (a plural message by its singular key)."""
    ids = (m.id[0] if isinstance(m.id, tuple) else m.id for m in _parsed(lang))
    return frozenset(i for i in ids if i)


def format_number(lang: Language, number: Number) -> str:
    """A figure as ``lang`` writes it."""
    # rounded to what is shown first, so the same shown figure is formatted once per process
    return _formatted(lang, number.unit, round(number.value, _DIGITS[number.unit]))


@lru_cache(maxsize=65_536)
def _formatted(lang: Language, unit: Unit, value: float) -> str:
    from babel.numbers import format_decimal, format_percent

    if unit == "percent":
        return str(format_percent(value, locale=lang))
    return str(format_decimal(value, format=_PATTERNS[unit], locale=lang))


def render(lang: Language, msg: Message) -> str:
    """A message in ``lang``, its numbers formatted for that language."""
    translations = catalog(lang)
    if msg.count is None:
        text = translations.gettext(msg.key)
        if text == msg.key and msg.key not in keys(lang):
            raise MissingMessage(f"{msg.key!r} is not in the {lang} catalog")
    else:
        plural_key = f"{msg.key}.other"
        text = translations.ngettext(msg.key, plural_key, msg.count)
        if text in (msg.key, plural_key) and msg.key not in keys(lang):
            raise MissingMessage(f"{msg.key!r} (plural) is not in the {lang} catalog")
    values: dict[str, str] = {}
    for name, value in msg.params:
        if isinstance(value, Number):
            values[name] = format_number(lang, value)
        elif isinstance(value, Message):
            values[name] = render(lang, value)
        else:
            values[name] = value
    if msg.count is not None:
        values.setdefault("count", format_number(lang, Number(msg.count)))
    return text.format(**values)


def negotiate(accept_language: str | None, default: Language) -> Language:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 quality values), or
    ``default`` when it names none of them."""
    best: tuple[float, Language] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # higher quality first; among equals, the one the client listed first
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, primary)  # type: ignore[assignment]
    return best[1] if best else default
