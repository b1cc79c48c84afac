"""The feature store's DAG ids, in a module that imports nothing: the DAG factory builds the DAGs
under them, and the status page (which never needs the operators or engines) links to them."""

BACKFILL_DAG_ID = "featurestore_backfill"
SCHEDULED_PREFIX = "featurestore_materialize__"  # + the feature set's name
MONITOR_DAG_ID = "featurestore_monitor"
