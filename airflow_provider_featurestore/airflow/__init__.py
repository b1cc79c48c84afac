"""The Airflow layer: the hook that owns the connections, thin operators, the DAG factory,
assets and the status-page plugin. It imports the core; the core never imports it."""
