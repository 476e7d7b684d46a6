"""The one dbt runner: the dbt project (``dbt_project/``) run against a lake.

dbt builds into a private DuckDB file under the lake (``Lake.build_db``) that no reader opens;
publishing (``pipelines.lib.publish``) copies the marts out of it. The lake's path reaches dbt
through ``CARDLAKE_LAKE`` (read by ``profiles.yml`` and the sources' locations), the run's days
through ``CARDLAKE_DAYS``. The cycle (``pipelines.cycle``), the Dagster assets and the tests all
run dbt through ``DbtProject``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from pipelines.lib.lake import Lake

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


class DbtError(RuntimeError):
    """A dbt command failed; the message lists the failing nodes and their errors, ``nodes``
    holds every node's result (those that ran before and beside the failure too)."""

    def __init__(self, message: str, nodes: Sequence[dict] = ()) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


def build_db(lake: Lake | Path) -> Path:
    return Lake.of(lake).build_db


def mart_pii_columns(project: Path = DBT_DIR) -> dict[str, frozenset[str]]:
    """The columns each mart marks ``meta: {pii: true}`` in the dbt project's YAML (read from
    the files, so publishing needs no manifest)."""
    out: dict[str, set[str]] = {}
    for path in sorted((project / "models" / "marts").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models") or []:
            for column in model.get("columns") or []:
                meta = column.get("meta") or (column.get("config") or {}).get("meta") or {}
                if meta.get("pii"):
                    out.setdefault(model["name"], set()).add(column["name"])
    return {name: frozenset(cols) for name, cols in out.items()}


def mart_keys(project: Path = DBT_DIR) -> dict[str, str]:
    """Each mart's key column: the first column the dbt project's YAML tests both ``unique`` and
    ``not_null`` (read from the files, as the PII columns are). A build that passed its tests has
    every row's key distinct and present, so ordering by it alone is a total order."""
    out: dict[str, str] = {}
    for path in sorted((project / "models" / "marts").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models") or []:
            for column in model.get("columns") or []:
                tests = column.get("data_tests") or column.get("tests") or []
                names = {t if isinstance(t, str) else next(iter(t), None) for t in tests}
                if {"unique", "not_null"} <= names:
                    out.setdefault(model["name"], column["name"])
    return out


def mart_docs(project: Path = DBT_DIR) -> dict[str, tuple[str | None, dict[str, str]]]:
    """Each mart's description and its columns' descriptions, from the dbt project's YAML.
    Publishing puts them on the serving tables, so the build itself need not write them into its
    own file (``persist_docs``) on every run."""
    out: dict[str, tuple[str | None, dict[str, str]]] = {}
    for path in sorted((project / "models" / "marts").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models") or []:
            columns = {
                c["name"]: c["description"].strip()
                for c in model.get("columns") or []
                if (c.get("description") or "").strip()
            }
            out[model["name"]] = ((model.get("description") or "").strip() or None, columns)
    return out


#: dbt's unit tests check the SQL on fixed inputs, not the day's data: the daily build leaves them
#: out; a full refresh and the test suite run them
NO_UNIT_TESTS = ("--exclude", "resource_type:unit_test")


class DbtProject:
    """The dbt project run against one lake: its environment, its one target folder (kept from
    run to run, so dbt parses only what changed) and the one way every caller runs dbt.

    The business days of a run reach the models in ``CARDLAKE_DAYS``, which the models read only
    while executing (``macros/run_days.sql``): days passed as ``--vars`` would change dbt's
    parse inputs on every run and make it re-parse the whole project."""

    def __init__(self, lake: Lake | Path) -> None:
        self.lake = Lake.of(lake)

    @property
    def target(self) -> Path:
        return self.lake.dbt_target

    @property
    def logs(self) -> Path:
        return self.lake.dbt_logs

    def environment(self, days: Sequence[dt.date | str] = ()) -> dict[str, str]:
        """The environment of a dbt command on this lake (creates nothing)."""
        return {
            "CARDLAKE_LAKE": str(self.lake.root),
            "CARDLAKE_DAYS": ",".join(str(d) for d in days),
            "DBT_PROFILES_DIR": str(DBT_DIR),
            "DBT_TARGET_PATH": str(self.target),
            "DBT_LOG_PATH": str(self.logs),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }

    def run(
        self,
        command: str = "build",
        args: Sequence[str] = (),
        days: Sequence[dt.date | str] = (),
    ) -> list[dict]:
        """Run one dbt command and return its node results; raise ``DbtError`` naming every
        failed node. ``days`` restricts the incremental models to those business days.

        dbt runs in a child process: dbt-duckdb keeps its DuckDB handle open for the life of the
        process, which would lock the build file against the publishing step."""
        self.lake.build.mkdir(parents=True, exist_ok=True)
        cli = [dbt_executable(), command, "--project-dir", str(DBT_DIR), *args]
        env = {**os.environ, **self.environment(days)}
        results_path = self.target / "run_results.json"
        results_path.unlink(missing_ok=True)  # never report a previous command's results
        proc = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
        nodes = []
        if results_path.exists():
            for r in json.loads(results_path.read_text()).get("results", []):
                if r["unique_id"].startswith("operation."):
                    continue  # the project's on-run-start hook (macros/changes.sql), not a node
                nodes.append(
                    {
                        "node": r["unique_id"],
                        "status": r["status"],
                        "message": r.get("message") or "",
                        "seconds": r.get("execution_time"),
                    }
                )
        if proc.returncode != 0:
            failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
            detail = "\n".join(f"  {n['node']}: {n['status']}: {n['message']}" for n in failed)
            tail = "\n".join(proc.stdout.splitlines()[-15:])
            raise DbtError(
                f"dbt {command} failed (exit {proc.returncode})\n{detail}\n{tail}", nodes
            )
        return nodes

    def build(
        self,
        days: Sequence[dt.date | str] = (),
        *,
        select: Sequence[str] = (),
        full_refresh: bool = False,
        unit_tests: bool | None = None,
    ) -> list[dict]:
        """``dbt build`` of ``select`` (default: the whole project) for ``days``: models, seeds
        and their data tests; dbt's unit tests only on a full refresh (or when asked)."""
        args: list[str] = []
        if select:
            args += ["--select", *select]
        if not (full_refresh if unit_tests is None else unit_tests):
            args += NO_UNIT_TESTS
        if full_refresh:
            args.append("--full-refresh")
        return self.run("build", args, days=days)


#: what the models are made of: a change to any of these files can change rows of history (a
#: product-coding seed, a model's SQL, a macro), which incremental runs never revisit
_DEFINITION_FILES = ("models", "macros", "seeds", "dbt_project.yml")


def project_fingerprint(project: Path) -> str:
    """A digest of the files the models are defined by (their paths and bytes)."""
    digest = hashlib.sha256()
    for file in _project_files(project, _DEFINITION_FILES):
        digest.update(file.relative_to(project).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


#: a run of several days whose days hold more than this share of the rows the lake has landed is
#: built in full: with most keys in the change sets, rebuilding them key by key costs more than a
#: rebuild (a catch-up or a backfill of most of the history); one day is always incremental
FULL_REFRESH_SHARE = 0.5


def full_refresh_reason(lake: Lake | Path, days: Sequence[dt.date] = ()) -> str | None:
    """Why the next build must rebuild every model from the whole lake (None: incremental will
    do): the build file is new, the models, macros or seeds changed since the last full build of
    the whole project (``record_full_build``), or the run's ``days`` (more than one) hold more
    than ``FULL_REFRESH_SHARE`` of the rows the lake has landed."""
    lake = Lake.of(lake)
    if not lake.build_db.exists():
        return "first build of this lake"
    try:
        built_from = lake.models_fingerprint.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "the lake's models were never built in full by this version"
    if built_from != project_fingerprint(DBT_DIR):
        return "the models, macros or seeds changed since the last full build"
    if len(set(days)) > 1 and (share := landed_share(lake, days)) > FULL_REFRESH_SHARE:
        return (
            f"the run's {len(set(days))} days hold {share:.0%} of the rows the lake has landed "
            f"(more than {FULL_REFRESH_SHARE:.0%})"
        )
    return None


def landed_share(lake: Lake, days: Sequence[dt.date]) -> float:
    """The share of the rows the lake has landed (every dataset's partitions, by their accounts)
    that ``days`` hold."""
    wanted = set(days)
    total = mine = 0
    root = lake.zone("_state")
    for folder in sorted(root.iterdir()) if root.exists() else ():
        if not folder.is_dir():
            continue
        for day, state in lake.states(folder.name).items():
            landed = int(state.get("landed") or 0)
            total += landed
            mine += landed if day in wanted else 0
    return mine / total if total else 0.0


def record_full_build(lake: Lake | Path) -> None:
    """After a full build of the whole project: incremental runs may follow."""
    path = Lake.of(lake).models_fingerprint
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(project_fingerprint(DBT_DIR) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_dbt(
    lake: Lake | Path,
    command: str = "build",
    args: Sequence[str] = (),
    days: Sequence[dt.date | str] = (),
) -> list[dict]:
    """One dbt command on ``lake`` (``DbtProject(lake).run``)."""
    return DbtProject(lake).run(command, args, days=days)


def dbt_executable() -> str:
    """The ``dbt`` next to this interpreter (the project's env), else the one on PATH."""
    here = Path(sys.executable).with_name("dbt")
    return str(here) if here.exists() else "dbt"


MANIFEST_TARGET = DBT_DIR / "target"
_PROJECT_FILES = ("models", "macros", "seeds", "tests", "dbt_project.yml", "profiles.yml")


def _project_files(project: Path, names: Sequence[str]) -> Iterator[Path]:
    """The files of the project's ``names`` (files, or folders walked in order), caches aside."""
    for name in names:
        path = project / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        yield from (f for f in files if "__pycache__" not in f.parts)


def _newest_project_file() -> float:
    return max((p.stat().st_mtime for p in _project_files(DBT_DIR, _PROJECT_FILES)), default=0.0)


def ensure_manifest(lake: Path) -> Path:
    """The dbt manifest the Dagster definitions are built from (``dbt parse``, re-run only when a
    project file is newer than the manifest). Parsing renders the lake's path into the sources.

    Several processes may load the definitions at once (test workers, the Dagster webserver and
    its daemon), so the parse runs under a lock into a private folder and the manifest is renamed
    into place: a reader never sees half a file. Parsing touches no database and creates nothing
    under the lake."""
    manifest = MANIFEST_TARGET / "manifest.json"
    if _fresh(manifest):
        return manifest
    MANIFEST_TARGET.mkdir(parents=True, exist_ok=True)
    with open(MANIFEST_TARGET / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _fresh(manifest):
            return manifest
        with tempfile.TemporaryDirectory(dir=MANIFEST_TARGET, prefix=".parse-") as tmp:
            env = {
                **os.environ,
                **DbtProject(lake).environment(),
                "DBT_TARGET_PATH": tmp,
                "DBT_LOG_PATH": tmp,
            }
            cli = [dbt_executable(), "parse", "--project-dir", str(DBT_DIR)]
            proc = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise DbtError("dbt parse failed\n" + "\n".join(proc.stdout.splitlines()[-20:]))
            os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


def _fresh(manifest: Path) -> bool:
    return manifest.exists() and manifest.stat().st_mtime >= _newest_project_file()
