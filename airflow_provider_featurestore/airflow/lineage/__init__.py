"""OpenLineage for the operators: used only when apache-airflow-providers-openlineage is
installed, and imported lazily, so without it nothing here imports OpenLineage."""
