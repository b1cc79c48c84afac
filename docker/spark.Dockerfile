# Apache Spark 4 (from the PySpark distribution, so that the executors' Python is the same 3.11
# as the Airflow image's driver: PySpark refuses workers of another minor version), the Delta
# jars, and the provider's packages for the Python the executors run (spark_jobs and the
# online-store writer of airflow_provider_featurestore, with their libraries; not Airflow).
# Build from the repository root:  docker build -f docker/spark.Dockerfile -t featurestore-spark .
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG PYSPARK_VERSION=4.2.0
ARG DELTA_VERSION=4.4.0
ARG SCALA_BINARY=2.13

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps curl maven \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

RUN pip install --no-cache-dir "pyspark==${PYSPARK_VERSION}" "delta-spark==${DELTA_VERSION}" \
      "redis[hiredis]>=5" "pyarrow>=15" "pandas>=2" numpy "pyyaml>=6" "pydantic>=2.5" "pendulum>=3" \
      "sqlalchemy>=2.0" "deltalake>=1.1"
COPY setup.cfg /opt/featurestore-src/setup.cfg
COPY scripts/delta-jars.sh /opt/featurestore-src/scripts/delta-jars.sh
# The Delta jars by their Maven coordinates (the same script as the tests), into Spark's jars.
RUN spark_home="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
 && ln -s "${spark_home}" /opt/spark \
 && DELTA_VERSION="${DELTA_VERSION}" SCALA_BINARY="${SCALA_BINARY}" \
      /opt/featurestore-src/scripts/delta-jars.sh /opt/spark/jars \
 && rm -rf /root/.m2
ENV SPARK_HOME=/opt/spark PATH=/opt/spark/bin:$PATH

COPY airflow_provider_featurestore /opt/featurestore-src/airflow_provider_featurestore
COPY spark_jobs /opt/featurestore-src/airflow_provider_featurestore/spark_jobs
ENV PYTHONPATH=/opt/featurestore-src

# The master or a worker: `spark-class org.apache.spark.deploy.master.Master` or
# `spark-class org.apache.spark.deploy.worker.Worker spark://spark-master:7077` (compose.yaml).
WORKDIR /opt/spark
