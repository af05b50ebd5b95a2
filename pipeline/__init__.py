"""Orchestration glue: Assets, task builders shared by the DAGs, and the `make run` driver."""
