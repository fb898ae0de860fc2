"""One customer for the analyst app: the scoring API's answer (stack) or the same service in process
(local, or when the API does not answer, said so), the what-if an analyst asks in business terms, and the
customer's consumption and price history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from spanishgas.serving.service import ScoringService
    from spanishgas.settings import Settings

API, IN_PROCESS = "by the scoring API", "in process"


class LookupFailed(LookupError):
    """The customer cannot be scored (unknown customer, no champion); the message says why."""


@dataclass
class Answer:
    """A scoring answer (the API's JSON) and where it came from."""

    body: dict[str, Any]
    source: str
    note: str = ""


class CustomerLookup:
    """Scores through ``settings.dashboard.api_url`` when set, else (or when it fails) in process."""

    def __init__(self, settings: Settings, service: ScoringService | None = None) -> None:
        self.settings = settings
        self._service = service

    def service(self) -> ScoringService:
        """The in-process scoring service (built and loaded on first use)."""
        if self._service is None:
            from spanishgas.serving import build_service

            self._service = build_service(self.settings)
            self._service.load()
        return self._service

    def score(self, customer_id: str) -> Answer:
        """The customer's score, reasons and recommendation."""
        return self._ask("GET", f"/score/{customer_id}", None, lambda s: s.score_customer(customer_id))

    def what_if(self, customer_id: str, features: dict[str, float | None]) -> Answer:
        """The same customer with ``features`` changed (``POST /score``)."""
        body = {"customer_id": customer_id, "features": features}
        return self._ask("POST", "/score", body, lambda s: s.score_what_if(customer_id, features))

    def _ask(self, method: str, path: str, body: dict[str, Any] | None, local: Any) -> Answer:
        url = self.settings.dashboard.api_url
        note = ""
        if url:
            try:
                return Answer(self._http(method, url.rstrip("/") + path, body), API)
            except LookupFailed:
                raise
            except Exception as exc:  # any transport or server failure: answer in process and say so
                note = f"the scoring API at {url} did not answer ({type(exc).__name__}: {exc}); answered in process"
        return Answer(self._local(local), IN_PROCESS, note)

    def _http(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        import httpx

        key = self.settings.dashboard.api_key
        headers = {"X-API-Key": key.get_secret_value()} if key else {}
        answer = httpx.request(method, url, json=body, headers=headers, timeout=self.settings.dashboard.api_timeout_s)
        if answer.status_code in (404, 422):
            raise LookupFailed(str(answer.json().get("detail", answer.text)))
        answer.raise_for_status()
        return dict(answer.json())

    def _local(self, call: Any) -> dict[str, Any]:
        from spanishgas.serving.service import CustomerNotFound, InvalidFeatures, NoModel

        try:
            return dict(call(self.service()).model_dump(mode="json"))
        except (CustomerNotFound, InvalidFeatures, NoModel) as exc:
            raise LookupFailed(str(exc)) from exc


# What a renewal signed today looks like to the model: a fresh 12-month contract.
RENEWED = {
    "months_to_renewal": 12.0,
    "renewal_bucket_expired": 0.0,
    "renewal_bucket_0_3m": 0.0,
    "renewal_bucket_3_6m": 0.0,
    "renewal_bucket_6_12m": 1.0,
    "near_renewal_x_high_competition": 0.0,
    "near_renewal_x_price_increase": 0.0,
    "near_renewal_x_negative_contact": 0.0,
    "expired_x_high_competition": 0.0,
    "contact_near_renewal": 0.0,
}
COMPLAINT_FEATURES = ("complaints_90d", "complaints_180d", "complaints_365d", "complaint_x_high_competition")


def what_if_features(
    current: dict[str, Any],
    price_change_pct: float = 0.0,
    renewal_signed: bool = False,
    complaint_resolved: bool = False,
) -> dict[str, float | None]:
    """The feature changes behind an analyst's question: a price change (percent on the energy price, seen
    as a price rise over the last three months), a renewal signed today, the open complaints resolved."""
    changes: dict[str, float | None] = {}
    if price_change_pct:
        factor = 1.0 + price_change_pct / 100.0
        for name in ("price_tier1_last", "price_vs_cost_last"):
            if current.get(name) is not None:
                changes[name] = float(current[name]) * factor
        changes["price_trend_3m"] = float(current.get("price_trend_3m") or 0.0) + price_change_pct / 100.0
        changes["price_increase_3m"] = 1.0 if price_change_pct > 0 else 0.0
    if renewal_signed:
        changes.update(RENEWED)
    if complaint_resolved:
        changes.update({name: 0.0 for name in COMPLAINT_FEATURES})
    return changes


def customer_features(settings: Settings, gold_run: str, customer_id: str) -> dict[str, Any]:
    """The customer's scored snapshot (gold's candidates row), for what-if starting values."""
    import pyarrow.dataset as ds

    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    rows = lake.read_table("gold", gold_run, "recommendation_candidates", filter=ds.field("customer_id") == customer_id)
    return rows.to_pylist()[0] if rows.num_rows else {}


def customer_history(settings: Settings, gold_run: str, customer_id: str) -> pd.DataFrame:
    """Monthly electricity and gas use and the energy price the customer paid (gold's customer_month)."""
    import pyarrow.dataset as ds

    from spanishgas.lake_reader import LakeReader

    columns = ["month", "elec_kwh", "gas_kwh", "variable_price_tier1_eur_kwh"]
    lake = LakeReader.from_settings(settings)
    rows = lake.read_table("gold", gold_run, "customer_month", columns, filter=ds.field("customer_id") == customer_id)
    history = rows.to_pandas().sort_values("month")
    history["month"] = pd.to_datetime(history["month"])
    return history.rename(
        columns={"elec_kwh": "electricity kWh", "gas_kwh": "gas kWh", "variable_price_tier1_eur_kwh": "price EUR/kWh"}
    )
