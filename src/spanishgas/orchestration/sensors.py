"""The landing sensor: waits, deferred (no worker slot held), for a complete delivery nobody claimed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from spanishgas.orchestration.landing import landing_paths, next_delivery


class DeliveryTrigger(BaseTrigger):
    """Runs in the triggerer: looks every ``poke_interval`` seconds, fires once with the delivery found."""

    def __init__(self, landing_dir: str, marker: str, claims_file: str, poke_interval: float) -> None:
        super().__init__()
        self.landing_dir, self.marker, self.claims_file = landing_dir, marker, claims_file
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Where the triggerer finds this class, and its arguments."""
        return (
            "spanishgas.orchestration.sensors.DeliveryTrigger",
            {
                "landing_dir": self.landing_dir,
                "marker": self.marker,
                "claims_file": self.claims_file,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll off the event loop (listing folders blocks) until a delivery is ready."""
        while True:
            found = await asyncio.to_thread(next_delivery, Path(self.landing_dir), self.marker, Path(self.claims_file))
            if found is not None:
                yield TriggerEvent({"delivery": str(found)})
                return
            await asyncio.sleep(self.poke_interval)


class DeliverySensor(BaseSensorOperator):
    """Succeeds with the path of the first complete, unclaimed delivery (its XCom); defers until one comes."""

    def __init__(self, *, platform_home: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform_home = platform_home

    def _paths(self) -> tuple[Path, str, Path]:
        from spanishgas.settings import get_settings

        settings = get_settings()
        landing, claims = landing_paths(settings, Path(self.platform_home))
        return landing, settings.orchestration.delivery_marker, claims

    def execute(self, context: Any) -> str:
        """Hand on a delivery that is already there, or wait for one in the triggerer."""
        from spanishgas.settings import get_settings

        landing, marker, claims = self._paths()
        found = next_delivery(landing, marker, claims)
        if found is not None:
            return str(found)
        self.log.info("waiting for a complete delivery (marker %s) in %s", marker, landing)
        trigger = DeliveryTrigger(str(landing), marker, str(claims), get_settings().orchestration.poke_interval_s)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=self.timeout)

    def execute_complete(self, context: Any, event: dict[str, str] | None = None) -> str:
        """The trigger found a delivery."""
        assert event is not None
        return event["delivery"]
