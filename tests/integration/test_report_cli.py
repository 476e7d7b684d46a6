"""`cardlake report settlement` checks its options against what the lake holds: a channel the
marts know, a supplier code of the strict form that the marts know, a version that was published,
and no path that leads out of the lake's settlement reports folder (the real CLI, as a user runs
it, over a small lake made here: a serving file with the channel and supplier dimensions loaded
from the project's seeds, and published report versions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.lake import Lake
from pipelines.lib.settlement import (
    ReportKey,
    SettlementError,
    latest_files,
    published_versions,
    reports_root,
)
from tests.conftest import cardlake

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"
DAY = "2026-09-20"
#: the subject a path traversal uses: from reports/settlement/channel/ up to the lake's root
ESCAPE = "../../../secret"


def _publish(lake: Path, key: ReportKey, versions: int) -> None:
    """``versions`` published versions of ``key``: an index and each version's files."""
    folder = key.folder(lake)
    entries = []
    for v in range(1, versions + 1):
        files = {ext: f"v{v}/{key.stem(v)}.{ext}" for ext in ("csv", "pdf", "xlsx")}
        for name in files.values():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"{key} v{v}\n")
        entries.append({"version": v, "files": files})
    (folder / "index.json").write_text(json.dumps({"report": str(key), "versions": entries}))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    con = duckdb.connect(str(Lake(root).warehouse))
    con.execute(
        "create table dim_channels as select * from read_csv(?, all_varchar = true)",
        [str(SEEDS / "channel_accounts.csv")],
    )
    con.execute(
        "create table dim_suppliers as select * from read_csv(?, all_varchar = true)",
        [str(SEEDS / "suppliers.csv")],
    )
    con.close()
    _publish(root, ReportKey("channel", "alipay", DAY), 2)
    _publish(root, ReportKey("supplier", "S01", "2026-09"), 1)
    # what a traversal would reach: a "report" planted outside the reports folder, laid out so
    # that the paths the old code built from `--channel ../../../secret` found its files
    secret = ReportKey("channel", ESCAPE, DAY)
    planted = root / "secret" / DAY
    assert key_folder_is(secret, root, planted)
    (planted / "v1" / "settlement_..").mkdir(parents=True)
    (planted / f"secret_{DAY}_v1.csv").write_text("not a report\n")
    for ext in ("pdf", "xlsx"):
        (planted / f"secret_{DAY}_v1.{ext}").write_text("not a report\n")
    (planted / "index.json").write_text(json.dumps({"versions": [{"version": 1}]}))
    return root


def key_folder_is(key: ReportKey, lake: Path, folder: Path) -> bool:
    return key.folder(lake).resolve() == folder.resolve()


def report(lake: Path, *args: str):
    return cardlake("report", "settlement", *args, "--lake", str(lake))


def _error(out) -> str:
    """The error as one line (typer draws it in a box, wrapped)."""
    text = re.sub(r"[│╭╮╰╯─]", " ", out.stdout + out.stderr)
    return " ".join(text.split())


def test_a_version_of_a_known_report_is_fetched_and_copied(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "download"
    got = report(lake, "--channel", "alipay", "--day", DAY, "--version", "1", "--out", str(out))
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"settlement_alipay_{DAY}_v1.pdf" in got.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        f"settlement_alipay_{DAY}_v1.{ext}" for ext in ("csv", "pdf", "xlsx")
    ]
    got = report(lake, "--supplier", "S01", "--month", "2026-09", "--version", "1")
    assert got.returncode == 0 and "payable_S01_2026-09_v1.csv" in got.stdout


def test_a_channel_must_be_one_the_lake_knows(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "download"
    for channel in (ESCAPE, "bitcoin", "ALIPAY", "alipay/../wechat", ""):
        got = report(lake, "--channel", channel, "--day", DAY, "--version", "1", "--out", str(out))
        assert got.returncode == 2, (channel, got.stdout, got.stderr)
        if channel:
            error = _error(got)
            assert "--channel" in error and "is not a channel of this lake" in error, error
            assert "use one of alipay, wechat" in error  # the seed's channels
        assert not out.exists(), channel  # nothing copied from anywhere
    assert "Traceback" not in got.stdout + got.stderr


def test_a_supplier_must_be_a_strict_code_the_lake_knows(lake: Path) -> None:
    for code in ("../S01", "S01/..", "..", ".", "S 01", "S01;rm", "-S01", "Ｓ01", "x" * 33):
        got = report(lake, "--supplier", code, "--month", "2026-09", "--version", "1")
        assert got.returncode == 2, (code, got.stdout, got.stderr)
        error = _error(got)
        assert "--supplier" in error and "is not a supplier code" in error, (code, error)
    got = report(lake, "--supplier", "S99", "--month", "2026-09", "--version", "1")
    assert got.returncode == 2
    error = _error(got)
    assert "--supplier" in error and "'S99' is not a supplier of this lake" in error
    assert "use one of S01, S02" in error


def test_a_version_must_be_one_that_was_published(lake: Path) -> None:
    for bad in ("0", "-1"):
        got = report(lake, "--channel", "alipay", "--day", DAY, "--version", bad)
        assert got.returncode == 2
        error = _error(got)
        assert "--version" in error and "greater than or equal to 1" in error, error  # not v1
    got = report(lake, "--channel", "alipay", "--day", DAY, "--version", "3")
    assert got.returncode == 2
    error = _error(got)
    assert "--version" in error and "has no version 3" in error
    assert "the published versions are 1, 2" in error
    got = report(lake, "--channel", "wechat", "--day", DAY, "--version", "1")
    assert got.returncode == 2
    assert "has no published version yet" in _error(got)
    got = report(lake, "--channel", "alipay", "--day", DAY, "--version", "2")
    assert got.returncode == 0 and f"settlement_alipay_{DAY}_v2.csv" in got.stdout


def test_one_report_at_a_time(lake: Path) -> None:
    got = report(
        lake, "--channel", "alipay", "--day", DAY, "--supplier", "S01", "--month", "2026-09"
    )
    assert got.returncode == 2 and "give one report" in got.stderr


def test_a_link_out_of_the_reports_folder_is_refused(lake: Path, tmp_path: Path) -> None:
    """A known channel whose report folder is a link to somewhere else: the files it names
    resolve outside the reports folder, so they are not handed out."""
    outside = tmp_path / "elsewhere"
    folder = ReportKey("channel", "wechat", DAY).folder(lake)
    _publish(tmp_path / "other-lake", ReportKey("channel", "wechat", DAY), 1)
    (tmp_path / "other-lake" / "reports").rename(outside)
    folder.parent.symlink_to(outside / "settlement" / "channel" / "wechat")
    got = report(lake, "--channel", "wechat", "--day", DAY, "--version", "1")
    assert got.returncode == 2
    error = _error(got)
    assert "--channel" in error and "is not inside the settlement reports folder" in error


def test_the_library_refuses_what_the_cli_refuses(lake: Path) -> None:
    key = ReportKey("channel", "alipay", DAY)
    assert published_versions(lake, key) == [1, 2]
    assert latest_files(lake, key)["csv"].name == f"settlement_alipay_{DAY}_v2.csv"
    with pytest.raises(SettlementError, match="numbered from 1, not 0"):
        latest_files(lake, key, 0)  # once silently the latest
    with pytest.raises(SettlementError, match=r"no version 5 \(published: v1, v2\)"):
        latest_files(lake, key, 5)
    with pytest.raises(SettlementError, match="not inside the settlement reports folder"):
        latest_files(lake, ReportKey("channel", ESCAPE, DAY), 1)
    assert reports_root(lake) == Lake.of(lake).reports / "settlement"
