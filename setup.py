"""What setup.cfg cannot say: the packages are the provider's own folders plus `spark_jobs/`,
which setup.cfg's package_dir installs as `airflow_provider_featurestore.spark_jobs`."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["airflow_provider_featurestore", "airflow_provider_featurestore.*"]),
        "airflow_provider_featurestore.spark_jobs",
    ]
)
