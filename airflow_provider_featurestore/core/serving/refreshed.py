"""`Refreshed` moved to `core/refreshed.py` (the online reader, outside `serving`, uses it);
this name stays for code written against it."""

from airflow_provider_featurestore.core.refreshed import Refreshed

__all__ = ["Refreshed"]
