"""What every page of the analyst app shares: the settings, the run ids that key the caches, the cached
reads (keyed by those ids, so a new gold run, scoring run or model version shows at once and nothing is
recomputed on a rerun), the sign-in gate and the header. Figures come from `spanishgas.analyst`."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from spanishgas.analyst.app import sign_in_required
from spanishgas.analyst.book import Book, RunKeys, load_book, run_keys
from spanishgas.settings import Settings, get_settings

OPEN_LOCAL = "open, loopback only (local demo)"
log = logging.getLogger(__name__)


def settings() -> Settings:
    """The platform's settings (read once per process)."""
    return get_settings()


@st.cache_data(ttl=2, show_spinner=False)
def keys(lake_uri: str, registry_uri: str) -> RunKeys:
    """The newest runs and model versions; re-read every two seconds at most."""
    return run_keys(settings())


def current_keys() -> RunKeys:
    """The run ids of what the pages show now."""
    s = settings()
    return keys(str(s.lake_uri), str(s.mlflow_registry_uri))


@st.cache_resource(show_spinner="Reading the scored book...", max_entries=4)
def book(lake_uri: str, scores_run: str | None) -> Book:
    """A published scoring run with the customers' attributes (cached per run id). Shared by every session,
    not copied: every page calls it, and `st.cache_data`'s copy of an 18 MiB book cost 0.2 s a run; the
    pages only read it (`spanishgas.analyst.views` returns new frames, tested)."""
    return load_book(settings(), scores_run)


@st.cache_resource(max_entries=4)
def model(registry_uri: str, version: str) -> Any:
    """A registered churn model version (kept, not copied, per version)."""
    from spanishgas.model.registry import load_version

    return load_version(settings(), version=version).model


@st.cache_resource(max_entries=2)
def segment_model(registry_uri: str, scores_run: str) -> Any:
    """The segment model with the champion alias, for the segments' archetypes. The scoring run does not
    record which segment version it used, so after the segments are retrained and before the next
    scoring run the archetypes are the new model's."""
    from spanishgas.retention.job import load_segments

    return load_segments(settings())


@st.cache_data(show_spinner="Reading the churn history...", max_entries=4)
def churn_history(lake_uri: str, scores_run: str, gold_run: str, version: str) -> Any:
    """Observed and expected churn rate per month: as the scoring run published it, or (for runs published
    before the batch job kept it) the history scored now by the run's model version."""
    from spanishgas.analyst.book import published_history
    from spanishgas.retention.history import churn_history as score_history

    published = published_history(settings(), scores_run)
    if published is not None:
        return published
    return score_history(settings(), gold_run, model(str(settings().mlflow_registry_uri), version))


@st.cache_data(show_spinner=False, max_entries=4)
def matured_labels(lake_uri: str, gold_run: str) -> Any:
    """The newest matured month's labels (for the segments' observed churn)."""
    from spanishgas.analyst.book import latest_matured_labels
    from spanishgas.retention.history import labelled_snapshots

    return latest_matured_labels(labelled_snapshots(settings(), gold_run, []))


@st.cache_data(show_spinner=False, max_entries=64)
def customer_history(lake_uri: str, gold_run: str, customer_id: str) -> Any:
    """A customer's monthly consumption and price in a gold run (read once per customer and run, not on
    every what-if rerun)."""
    from spanishgas.analyst.lookup import customer_history as history

    return history(settings(), gold_run, customer_id)


@st.cache_data(show_spinner=False, max_entries=64)
def customer_features(lake_uri: str, gold_run: str, customer_id: str) -> Any:
    """A customer's current features in a gold run (the what-if's starting point)."""
    from spanishgas.analyst.lookup import customer_features as features

    return features(settings(), gold_run, customer_id)


@st.cache_resource(max_entries=2)
def lookup(api_url: str | None, champion_version: str | None) -> Any:
    """The customer lookup (the scoring API, or the service in process for this champion version)."""
    from spanishgas.analyst.lookup import CustomerLookup

    return CustomerLookup(settings())


@st.cache_data(show_spinner="Reading the registry...", max_entries=8)
def version_report(registry_uri: str, version: str) -> dict[str, Any]:
    """What training recorded for a version."""
    from spanishgas.analyst.health import version_report as report

    return report(settings(), version)


@st.cache_data(show_spinner="Reading the models' forward test scores...", max_entries=2, ttl=60)
def test_curves(registry_uri: str, gold_run: str | None, versions: tuple[tuple[str, str], ...]) -> Any:
    """Champion and challenger on forward test rows (cached per gold run and versions)."""
    from spanishgas.analyst.health import compare_on_test_rows

    return compare_on_test_rows(settings(), dict(versions))


@st.cache_data(show_spinner=False, max_entries=8)
def version_extras(registry_uri: str, version: str) -> tuple[Any, str]:
    """A version's global SHAP importance and model card."""
    from spanishgas.analyst.health import importance, model_card

    return importance(settings(), version), model_card(settings(), version)


@st.cache_data(show_spinner=False, ttl=30)
def decisions(registry_uri: str, champion_version: str | None) -> Any:
    """The promotion decisions log (re-read when the champion moves, or after 30 s)."""
    from spanishgas.analyst.health import decisions as log

    return log(settings())


@st.cache_data(show_spinner="Reading the monitoring runs...", max_entries=2)
def monitoring(lake_uri: str, monitoring_run: str | None) -> Any:
    """Every monitoring run up to ``monitoring_run``."""
    from spanishgas.analyst.health import monitoring_history

    return monitoring_history(settings())


def compared_versions(k: RunKeys) -> dict[str, str]:
    """The model page's columns: its label ("champion v3") -> model version; the challenger only when it
    is another version. Empty before the first champion."""
    if k.champion_version is None:
        return {}
    versions = {"champion": k.champion_version}
    if k.challenger_version and k.challenger_version != k.champion_version:
        versions["challenger"] = k.challenger_version
    return {f"{name} v{version}": version for name, version in versions.items()}


def prime() -> list[str]:
    """Fill the caches the pages read first for the newest runs, as a first visit to every page would, so
    the first analyst after a start finds them filled (the app's start-up hook calls this in a background
    thread; Streamlit's caches are per process). Returns what was read; a read that fails is left to its
    page, which then shows the error."""
    s = settings()
    lake, registry = str(s.lake_uri), str(s.mlflow_registry_uri)
    k = current_keys()
    reads: list[tuple[str, Any]] = [("monitoring runs", lambda: monitoring(lake, k.monitoring_run))]
    if k.scores_run is not None:
        b = book(lake, k.scores_run)
        reads += [
            ("churn model", lambda: model(registry, b.model_version)),
            ("segment model", lambda: segment_model(registry, b.run_id)),
            ("churn history", lambda: churn_history(lake, b.run_id, b.gold_run, b.model_version)),
            ("matured labels", lambda: matured_labels(lake, b.gold_run)),
        ]
    versions = compared_versions(k)
    for label, version in versions.items():
        reads.append((f"{label} report", lambda v=version: version_report(registry, v)))
    if versions:
        reads += [
            ("test curves", lambda: test_curves(registry, k.gold_run, tuple(versions.items()))),
            ("importance and card", lambda: version_extras(registry, str(k.champion_version))),
            ("decisions", lambda: decisions(registry, k.champion_version)),
        ]
    done = ["scored book"] if k.scores_run is not None else []
    for name, read in reads:
        try:
            read()
            done.append(name)
        except Exception as exc:  # the page that needs it reads again and shows what went wrong
            log.warning("start-up read of the %s skipped: %s", name, exc)
    return done


def auth_configured() -> bool:
    """Whether Streamlit's secrets file has an ``[auth]`` section (without raising when it has none)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def access_gate() -> str:
    """Stop the page unless the viewer may see customer data; returns the access mode in force."""
    s = settings()
    if not sign_in_required(s):
        return OPEN_LOCAL
    if not auth_configured():
        st.error(
            "Sign-in is required here (stack profile) but no identity provider is configured: add an `[auth]` "
            "section to `.streamlit/secrets.toml` (docs/dashboard.md). No customer data is shown."
        )
        st.stop()
    if not st.user.get("is_logged_in", False):
        st.info("The retention app shows customers' data: sign in to continue.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    return access_mode()


def access_mode() -> str:
    """The access mode in force, in words (after :func:`access_gate` let the viewer in)."""
    if not sign_in_required(settings()):
        return OPEN_LOCAL
    return f"signed in as {st.user.get('email') or st.user.get('name') or 'an authenticated user'}"


def page_start(title: str) -> None:
    """Every page's title and header: the data's as-of date, model version and gold run, and the access
    mode in force."""
    st.title(title)
    k = current_keys()
    parts = [f"access: {access_mode()}"]
    if k.scores_run is not None:
        b = book(str(settings().lake_uri), k.scores_run)
        parts = [f"data as of {b.as_of}", f"model v{b.model_version}", f"gold run {b.gold_run}", *parts]
        if k.champion_version and k.champion_version != b.model_version:
            parts.append(f"champion is now v{k.champion_version}: the next scoring run uses it")
    elif k.gold_run:
        parts = [f"gold run {k.gold_run}", *parts]
    st.caption(" · ".join(parts))


def require_book() -> Book:
    """The current book, or a friendly stop when nothing is scored yet."""
    k = current_keys()
    if k.scores_run is None:
        if k.champion_version is None:
            st.warning(
                "No champion model yet, so nobody is scored: train and promote one (`spanishgas train`, then "
                "`spanishgas promote`, or the spanishgas_training DAG)."
            )
        else:
            st.info("No published scores yet: run `spanishgas score` (or the spanishgas_scoring DAG).")
        st.stop()
    return book(str(settings().lake_uri), k.scores_run)


def euros(value: float) -> str:
    """A figure in euros as the business writes it."""
    return f"{value:,.0f} EUR"
