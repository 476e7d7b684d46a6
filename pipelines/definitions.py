"""The Dagster code location: ``dagster dev -m pipelines.definitions``."""

from pipelines.defs import build_definitions
from pipelines.lib import settings

settings.load_env_file()
settings.private_files()
defs = build_definitions()
