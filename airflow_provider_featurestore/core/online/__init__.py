"""The online store: the latest feature values per entity, for serving.

`OnlineStore` (`protocol.py`) is what the package uses; `online_store_for(url)` builds the one a
URL names (`factory.py`); Redis is the backend (`redis_store.py`). The layout of a feature set
version (`layout.py`) and the text of its values (`codec.py`) are the same for every backend;
the guarded-write script (`guarded_write.py`), hand-packed RESP (`resp.py`), the calls in flight
(`pipeline.py`), cluster routing (`cluster.py`) and connecting (`connection.py`) are Redis's.
Every module is imported here: a first lookup of a serving process must import nothing.
"""

from airflow_provider_featurestore.core.online.factory import online_store_for
from airflow_provider_featurestore.core.online.layout import EVENT_TIME_FIELD, MARKER_SUFFIX, OnlineLayout
from airflow_provider_featurestore.core.online.protocol import OnlineStore, OnlineStoreUnavailable, WriteStats
from airflow_provider_featurestore.core.online.redis_store import RedisOnlineStore

__all__ = [
    "EVENT_TIME_FIELD",
    "MARKER_SUFFIX",
    "OnlineLayout",
    "OnlineStore",
    "OnlineStoreUnavailable",
    "RedisOnlineStore",
    "WriteStats",
    "online_store_for",
]
