"""cardlake pipelines: the Dagster code location and the `cardlake` CLI."""
