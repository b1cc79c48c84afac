"""What runs inside Spark: the materialization job and the readers/writers it uses."""
