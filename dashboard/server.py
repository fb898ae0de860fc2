"""The analyst app served as Streamlit's ASGI app (`st.App`), so the process warms up when it starts
instead of making the first analyst wait for it: `spanishgas dashboard` runs this file."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st


def fill_caches() -> list[str]:
    """The pages' own cached reads of the newest runs (`common.prime`)."""
    import common  # this folder is on sys.path, as it is for the pages

    return common.prime()


@asynccontextmanager
async def warm_up(app: Any) -> AsyncIterator[None]:
    """Start warming in the background; the server answers at once."""
    from spanishgas.analyst.app import warm_up_process

    threading.Thread(target=warm_up_process, args=(fill_caches,), name="warm-up", daemon=True).start()
    yield


app = st.App("app.py", lifespan=warm_up)
