"""What every page of the analyst app shares: the settings, the run ids that key the caches, the cached
reads (keyed by those ids, so a new gold run, scoring run or model version shows at once and nothing is
recomputed on a rerun), the sign-in gate and the header. Figures come from `spanishgas.analyst`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from spanishgas.analyst.book import Book, RunKeys, load_book, run_keys
from spanishgas.settings import Settings, get_settings

OPEN_LOCAL = "open, loopback only (local demo)"


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


@st.cache_data(show_spinner="Reading the scored book...", max_entries=4)
def book(lake_uri: str, scores_run: str | None) -> Book:
    """A published scoring run with the customers' attributes (cached per run id)."""
    return load_book(settings(), scores_run)


@st.cache_resource(max_entries=4)
def model(registry_uri: str, version: str) -> Any:
    """A registered churn model version (kept, not copied, per version)."""
    from spanishgas.model.registry import load_version

    return load_version(settings(), version=version).model


@st.cache_resource(max_entries=2)
def segment_model(registry_uri: str, scores_run: str) -> Any:
    """The registered segment model the scoring run used."""
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


def sign_in_required(s: Settings) -> bool:
    """Sign-in is required in the stack profile unless the settings say otherwise."""
    return s.profile == "stack" if s.dashboard.require_sign_in is None else s.dashboard.require_sign_in


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
