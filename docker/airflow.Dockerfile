# Airflow 3 with the feature store provider, a JRE and PySpark + delta-spark for spark-submit.
# Build from the repository root:  docker build -f docker/airflow.Dockerfile -t featurestore-airflow .
# The versions below must agree with setup.cfg (tests/test_docker.py checks them).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG PYSPARK_VERSION=4.2.0
ARG DELTA_VERSION=4.4.0
ARG SCALA_BINARY=2.13

USER root
# spark-submit (client mode) runs the Spark driver inside the Airflow task: it needs a JRE.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

USER airflow
COPY --chown=airflow:root setup.cfg pyproject.toml README.md /opt/featurestore-src/
COPY --chown=airflow:root airflow_provider_featurestore /opt/featurestore-src/airflow_provider_featurestore
COPY --chown=airflow:root spark_jobs /opt/featurestore-src/spark_jobs
# The provider (with psycopg2 for the interval table), pinned PySpark/delta-spark, and asyncpg
# for Airflow's async engine on PostgreSQL.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
      "/opt/featurestore-src[postgres]" "pyspark==${PYSPARK_VERSION}" "delta-spark==${DELTA_VERSION}" asyncpg

# The Delta jars by their Maven coordinates (scripts/delta-jars.sh, Maven's own client and
# repositories), into PySpark's own jars folder so that every spark-submit from this image has
# them on the driver's classpath.
COPY --chown=airflow:root scripts/delta-jars.sh /opt/featurestore-src/scripts/delta-jars.sh
RUN DELTA_VERSION="${DELTA_VERSION}" SCALA_BINARY="${SCALA_BINARY}" /opt/featurestore-src/scripts/delta-jars.sh \
      "$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')" \
 && rm -rf ~/.m2
