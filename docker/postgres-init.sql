-- The interval table's own database beside Airflow's metadata database (same server).
CREATE DATABASE featurestore OWNER airflow;
