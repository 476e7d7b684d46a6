"""The raw assets' check specs: one per check of ``pipelines.lib.checks`` (row accounting and
the contract's GX suite block what follows; the volume check warns)."""

from __future__ import annotations

import dagster as dg

from pipelines.lib.checks import SPECS
from pipelines.lib.contracts import Contract


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            spec.name(contract),
            asset=contract.asset_name,
            blocking=spec.blocking,
            description=spec.description,
        )
        for spec in SPECS
    ]
