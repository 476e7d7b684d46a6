"""How ``cardlake run`` shows a run of the cycle: a line per landed day and per stage, the
``--timings`` file, and the record in the project's Dagster instance. It decides nothing about
the cycle itself (``pipelines.cycle.run`` does)."""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any

from pipelines import cycle
from pipelines.cli.render import console, err_console, print_outcomes, print_tickets

_STATUS = {
    "land": "landing the sources (validated, quarantined, accounted, checked)…",
    "models": "models: dbt build (staging → intermediate → marts, with tests)…",
    "publish": "publishing the marts…",
    "reports": "settlement reports…",
    "tickets": "alert tickets and messages…",
}


class Timings(cycle.Observer):
    """``--timings FILE``: every stage's start and end (Unix time, so that a sampler outside the
    process can attribute memory to it), seconds and detail, rewritten as each stage ends."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stages: list[dict[str, Any]] = []

    def stage_finished(self, record: cycle.StageRecord, outcome: Any, scope: cycle.Scope) -> None:
        entry = dataclasses.asdict(record)
        self.stages.append({**entry.pop("detail"), **entry})
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"stages": self.stages}, indent=2) + "\n", encoding="utf-8")
            tmp.replace(self.path)


class Printer(cycle.Observer):
    """One line per landed day and per stage, on the console."""

    def __init__(self, lake_root: Path) -> None:
        self.lake_root = lake_root
        self.status = None

    def stage_started(self, name: str, scope: cycle.Scope) -> None:
        self.status = console.status(_STATUS[name])
        self.status.start()

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def day_landed(self, o: cycle.DayLanding) -> None:
        mark = "[green]✓[/]" if o.success else "[red]✗[/]"
        console.print(
            f"{mark} {o.day}  landed {o.total('landed'):,} · quarantined "
            f"{o.total('quarantined'):,} · skipped {o.total('skipped'):,} · {o.seconds:.1f} s"
        )

    def stage_finished(self, record: cycle.StageRecord, outcome: Any, scope: cycle.Scope) -> None:
        self.stop()
        getattr(self, f"_{record.stage}")(outcome, record.seconds)

    def _land(self, landings: list[cycle.DayLanding], seconds: float) -> None:
        if all(d.success for d in landings):
            console.print(f"landed: {len(landings)} days in {self.lake_root}")

    def _models(self, m: cycle.ModelsBuilt, seconds: float) -> None:
        console.print(
            f"[green]✓[/] models: {len(m.models)} built, {m.tests} tests passed in {seconds:.1f} s"
            + (f" · rebuilt in full: {m.full_refresh}" if m.full_refresh else "")
        )

    def _publish(self, p, seconds: float) -> None:
        console.print(
            f"[green]✓[/] published {len(p.marts)} marts ({sum(p.rows.values()):,} rows, "
            f"{p.files_written} files rewritten; {len(p.from_logs)} from their change logs"
            f"{', compacted' if p.compacted else ''}) in {p.seconds:.1f} s → "
            f"{self.lake_root / 'warehouse.duckdb'}"
        )

    def _reports(self, outcomes, seconds: float) -> None:
        count = {
            s: sum(o.status == s for o in outcomes) for s in ("published", "unchanged", "held")
        }
        console.print(
            f"[green]✓[/] settlement reports: {count['published']} published, "
            f"{count['unchanged']} unchanged, {count['held']} held in {seconds:.1f} s → "
            f"{self.lake_root / 'reports' / 'settlement'}"
        )

    def _tickets(self, r, seconds: float) -> None:
        print_tickets(r, seconds)


def run_and_report(run_on: cycle.Cycle, scope: cycle.Scope, timings: Path | None) -> int:
    """Run the cycle over ``scope``, showing it as it goes and recording it in Dagster; the exit
    status: 0 done, 1 a blocking check, model, test, publication, routing file or report failed."""
    with warnings.catch_warnings():
        # loading the definitions: Dagster's notes on its beta parameters are not the user's news
        warnings.simplefilter("ignore")
        from pipelines.defs.record import DagsterRecorder
    from pipelines.lib.dbt import DbtError
    from pipelines.lib.notify import RouteConfigError
    from pipelines.lib.publish import PublishError

    printer, recorder = Printer(run_on.lake.root), DagsterRecorder()
    error, code = None, 0
    try:
        result = cycle.run(run_on, scope, cycle.Observers(printer, Timings(timings), recorder))
    except (DbtError, PublishError) as exc:
        printer.stop()
        error, code = str(exc), 1
        console.print(f"[red]models failed; nothing was published:[/]\n{exc}")
        if "not found" in str(exc) or "schema" in str(exc).lower():
            console.print(
                "hint: after an upgrade that changed an incremental model, rebuild it once "
                "with `cardlake run --full-refresh`"
            )
    except RouteConfigError as exc:
        printer.stop()
        error, code = str(exc), 1
        err_console.print(
            f"[red]alert routing in {run_on.alerts.config_path}: {exc}[/]", highlight=False
        )
    else:
        if failed := result.failed_landing:
            error, code = "\n".join(failed.failures), 1
            console.print(
                f"[red]blocking checks failed on {failed.day}; later days were not run:[/]"
            )
            for line in failed.failures:
                console.print(f"  · {line}")
        elif result.held:
            error, code = "settlement reports that do not tie out are held", 1
            print_outcomes(result.held, run_on.lake.root)
            console.print("[red]reports that do not tie out are held, not published[/]")
    finally:
        printer.stop()
    _record(recorder, scope, error)
    return code


def _record(recorder, scope: cycle.Scope, error: str | None) -> None:
    """Record the run in Dagster; a record that cannot be written costs a warning, not the run."""
    started = time.perf_counter()
    try:
        run_id = recorder.record(scope, error)
    except Exception as exc:  # the lake is already right; the record is for the UI
        err_console.print(f"[yellow]could not record the run in Dagster: {exc}[/]")
        return
    console.print(
        f"recorded in Dagster as run {run_id[:8]} (job cardlake_run) in "
        f"{time.perf_counter() - started:.1f} s",
        style="dim",
    )
