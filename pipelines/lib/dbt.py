"""Running the dbt project (``dbt_project/``) against a lake, in-process.

dbt builds into a private DuckDB file under the lake (``<lake>/_build/cardlake.duckdb``) that no
reader opens; publishing (``pipelines.lib.publish``) copies the marts out of it. The lake's path
reaches dbt through ``CARDLAKE_LAKE`` (read by ``profiles.yml`` and the sources' locations).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
BUILD_DB = Path("_build") / "cardlake.duckdb"


class DbtError(RuntimeError):
    """A dbt command failed; the message lists the failing nodes and their errors."""


def build_db(lake: Path) -> Path:
    return Path(lake).resolve() / BUILD_DB


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


def dbt_env(
    lake: Path, target_path: Path | str | None = None, log_path: Path | str | None = None
) -> dict[str, str]:
    """Environment for a dbt command on ``lake`` (also used by dagster-dbt's CLI resource):
    where the lake is, where dbt's profile, artefacts and logs go. Creates nothing."""
    lake = Path(lake).resolve()
    return {
        "CARDLAKE_LAKE": str(lake),
        "DBT_PROFILES_DIR": str(DBT_DIR),
        "DBT_TARGET_PATH": str(target_path or lake / "_build" / "dbt_target"),
        "DBT_LOG_PATH": str(log_path or lake / "_build" / "dbt_logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def build_env(lake: Path) -> dict[str, str]:
    """``dbt_env`` for a build, with the private build folder under the lake created."""
    build_db(lake).parent.mkdir(parents=True, exist_ok=True)
    return dbt_env(lake)


@contextlib.contextmanager
def temporary_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the length of a block (dagster-dbt's CLI resource hands the
    process environment to dbt and takes no environment of its own)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dbt(
    lake: Path,
    command: str = "build",
    args: Sequence[str] = (),
    days: Sequence[str] | None = None,
) -> list[dict]:
    """Run one dbt command on ``lake`` and return its node results; raise ``DbtError`` naming
    every failed node. ``days`` restricts incremental models to those business days.

    dbt runs in a child process, as dagster-dbt runs it: dbt-duckdb keeps its DuckDB handle open
    for the life of the process, which would lock the build file against the publishing step.
    """
    cli = [dbt_executable(), command, "--project-dir", str(DBT_DIR), *args]
    if days:
        cli += ["--vars", json.dumps({"cardlake_days": list(days)})]
    env = {**os.environ, **build_env(lake)}
    proc = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    results_path = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    nodes = []
    if results_path.exists():
        for r in json.loads(results_path.read_text()).get("results", []):
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
        raise DbtError(f"dbt {command} failed (exit {proc.returncode})\n{detail}\n{tail}")
    return nodes


def dbt_executable() -> str:
    """The ``dbt`` next to this interpreter (the project's env), else the one on PATH."""
    here = Path(sys.executable).with_name("dbt")
    return str(here) if here.exists() else "dbt"


MANIFEST_TARGET = DBT_DIR / "target"
_PROJECT_FILES = ("models", "macros", "seeds", "tests", "dbt_project.yml", "profiles.yml")


def _newest_project_file() -> float:
    newest = 0.0
    for name in _PROJECT_FILES:
        path = DBT_DIR / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


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
            env = {**os.environ, **dbt_env(lake, target_path=tmp, log_path=tmp)}
            cli = [dbt_executable(), "parse", "--project-dir", str(DBT_DIR)]
            proc = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise DbtError("dbt parse failed\n" + "\n".join(proc.stdout.splitlines()[-20:]))
            os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


def _fresh(manifest: Path) -> bool:
    return manifest.exists() and manifest.stat().st_mtime >= _newest_project_file()
