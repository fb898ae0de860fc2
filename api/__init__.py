"""The call-center scoring API (FastAPI). Build it with :func:`api.main.create_app`."""
