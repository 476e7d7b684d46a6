"""The Dagster code location: ``dagster dev -m pipelines.definitions``."""

from pipelines.defs import build_definitions

defs = build_definitions()
