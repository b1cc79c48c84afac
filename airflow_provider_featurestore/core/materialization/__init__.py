"""Materialization: the job model, the runner that claims and records chunks, the engines that
run a batch, and the Spark job every engine runs."""
