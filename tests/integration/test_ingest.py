"""Ingestion with real Dagster materialisations on a small hostile shop."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.contracts import load_contracts
from pipelines.lib.lake import Lake
from simulator.build import simulate
from simulator.config import SimConfig
from tests.conftest import cardlake, land_days, source_days

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE = {"seed": 11, "start": dt.date(2026, 10, 5), "days": 4, "orders_per_day": 400, "skus": 80}
VOLATILE = ["_extracted_at"]  # the only column allowed to differ between two runs


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("ingest")
    cfg = SimConfig(**HOSTILE, mess="hostile")
    sources = simulate(cfg, base / "sources").out
    lake = base / "lake"
    days = source_days(sources, lake)
    outcomes = land_days(sources, lake, days)
    return cfg, sources, lake, days, outcomes


def _truth(sources: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(sources / "_truth" / f"{name}.parquet")


def _quarantine(lake: Path, dataset: str) -> pl.DataFrame:
    files = sorted((lake / "quarantine" / dataset).glob("business_date=*/part-0.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def _snapshot(lake: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for zone in ("raw", "quarantine"):
        for f in sorted((lake / zone).glob("*/business_date=*/part-0.parquet")):
            frame = pl.read_parquet(f).drop(VOLATILE, strict=False)
            out[str(f.relative_to(lake))] = frame
    return out


def _assert_same_lake(a: Path, b: Path) -> None:
    sa, sb = _snapshot(a), _snapshot(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].equals(sb[key]), key


def test_every_day_lands_and_accounting_holds_exactly(landed) -> None:
    cfg, _, lake, days, outcomes = landed
    assert days[0] == cfg.start - dt.timedelta(
        days=1
    )  # the first supplier delivery comes a day early
    assert days[-1] >= cfg.start + dt.timedelta(days=cfg.days - 1)
    assert all(o.success for o in outcomes), [o.failures for o in outcomes]
    store = Lake(lake)
    for contract in load_contracts().values():
        for day in days:
            state = store.read_state(contract.dataset, day)
            assert state is not None, (contract.dataset, day)
            raw = store.read_partition("raw", contract.dataset, day)
            quarantine = store.read_partition("quarantine", contract.dataset, day)
            assert raw.height == state["landed"] and quarantine.height == state["quarantined"]
            assert state["read"] == state["landed"] + state["quarantined"] + state["skipped"]
            assert store.partition_is_whole(contract.dataset, day)
            if contract.dataset == "shop__orders" and state["watermark"]:
                # junk rows dated years ahead are read (to quarantine them) but never move it
                assert state["watermark"][:10] in (str(day), str(day - dt.timedelta(days=1)))


def test_junk_rows_are_quarantined_with_their_reason(landed) -> None:
    _, sources, lake, _, _ = landed
    anomalies = _truth(sources, "anomalies")
    expected_rule = {
        ("main", "bad_row_missing_key"): "email:missing",
        ("main", "bad_row_nonpositive_amount"): "actual_price:out_of_range",
        ("main", "bad_row_unparsable_date"): "created_at:unparsable",
        ("main", "bad_row_unknown_product"): "goods_id:unknown_reference",
        ("main", "bad_row_future_timestamp"): "created_at:future",
        ("substation", "bad_row_missing_key"): "contact:missing",
        ("substation", "bad_row_nonpositive_amount"): "amount:out_of_range",
        ("substation", "bad_row_unparsable_date"): "create_time:unparsable",  # a zero DATETIME
        ("substation", "bad_row_unknown_product"): "commodity_id:unknown_reference",
        ("substation", "bad_row_future_timestamp"): "create_time:future",
    }
    for shop, dataset, number in (
        ("main", "shop__orders", "order_sn"),
        ("substation", "substation__order", "trade_no"),
    ):
        q = _quarantine(lake, dataset).with_columns(
            pl.col("_record").str.json_path_match(f"$.{number}").alias("no")
        )
        rules = dict(zip(q["no"], q["_rule"], strict=True))
        junk = anomalies.filter(
            pl.col("kind").str.starts_with("bad_row_") & (pl.col("source").str.starts_with(shop))
        )
        assert junk.height > 0
        for kind, record in junk.select("kind", "record").iter_rows():
            assert rules.get(record) == expected_rule[(shop, kind)], (shop, kind, record)
        # nothing but the junk and the test orders is quarantined: real orders all land
        tests = anomalies.filter(
            (pl.col("kind") == "test_order") & pl.col("source").str.starts_with(shop)
        )
        assert set(q["no"]) == set(junk["record"]) | set(tests["record"])
        assert set(q.filter(pl.col("_rule").str.ends_with("test_order"))["no"]) == set(
            tests["record"]
        )


def test_every_true_order_version_is_landed_once(landed) -> None:
    _, sources, lake, _, _ = landed
    truth_orders = _truth(sources, "orders").filter(~pl.col("is_test"))
    raw = pl.read_parquet(
        lake / "raw" / "shop__orders" / "*" / "*.parquet", hive_partitioning=False
    )
    latest = raw.sort("updated_at").unique("order_sn", keep="last")
    main = truth_orders.filter(pl.col("shop") == "main")
    assert set(latest["order_sn"]) == set(main["order_no"])
    assert raw.select(pl.struct("id", "updated_at").is_duplicated().any()).item() is False


def test_file_mess_is_rejected_deduplicated_or_superseded(landed) -> None:
    _, sources, lake, days, _ = landed
    anomalies = _truth(sources, "anomalies")
    store = Lake(lake)
    manifests = []
    for dataset in (
        "alipay__statement_lines",
        "wechat__bill_lines",
        "crm__members",
        "supplier__card_batches",
    ):
        for day in days:
            for entry in store.read_state(dataset, day).get("files", []):
                manifests.append({**entry, "dataset": dataset})
    files = pl.DataFrame(manifests)
    by_name = {Path(f).name: s for f, s in zip(files["file"], files["status"], strict=True)}
    for record in anomalies.filter(pl.col("kind") == "resent_file")["record"]:
        assert by_name[record] == "skipped_duplicate", record
    broken = anomalies.filter(pl.col("kind") == "statement_footer_mismatch")["record"]
    # saved again by a spreadsheet with the IDs in scientific notation, or with every time cut
    # to the minute: refused, re-sent
    damaged = anomalies.filter(
        pl.col("kind").is_in(["statement_scientific_ids", "statement_times_to_minute"])
    )["record"]
    assert len(broken) > 0 and len(damaged) > 0
    for record in [*broken, *damaged]:
        assert by_name[record] == "rejected"
        corrected = record.replace(".csv", "_v2.csv")
        assert by_name[corrected] == "landed"
    # saved again by a spreadsheet, readable: landed as they are (unless their footer is off)
    resaved = set(anomalies.filter(pl.col("kind") == "statement_resaved")["record"])
    assert resaved - set(broken)
    for record in resaved - set(broken):
        assert by_name[record] == "landed", record
    rejected = files.filter(pl.col("status") == "rejected")
    assert set(
        rejected["file"].map_elements(lambda f: Path(f).name, return_dtype=pl.String)
    ) == set(broken) | set(damaged)
    # a rejected statement's lines are all in quarantine, with the reason
    q = pl.concat(
        [_quarantine(lake, d) for d in ("alipay__statement_lines", "wechat__bill_lines")],
        how="diagonal_relaxed",
    )
    assert (
        q.filter(pl.col("_rule") == "file:footer_mismatch")["_reason"]
        .str.contains("rejected whole")
        .all()
    )
    assert (
        q.filter(pl.col("_rule") == "file:file_rejected")["_reason"]
        .str.contains(r"line \d+: .* scientific notation")
        .any()
    )
    # nothing else in the statements is refused: no false positives
    assert set(q["_rule"]) == {"file:footer_mismatch", "file:file_rejected"}
    assert (
        q.filter(pl.col("_rule") == "file:file_rejected")["_reason"]
        .str.contains("scientific notation|date format without the seconds")
        .all()
    )
    # times cut to the minute by a spreadsheet: refused, naming the line and the column
    cut = anomalies.filter(pl.col("kind") == "statement_times_to_minute")
    minute = q.filter(pl.col("_reason").str.contains("without the seconds"))
    assert minute["_reason"].str.contains(r"line \d+: (创建时间|完成时间) reads '\d{4}/").all()
    assert (cut.height > 0) == (minute.height > 0)
    # supplier files: schema drift still lands, malformed keys quarantined, repeated keys once
    sup = _quarantine(lake, "supplier__card_batches")
    malformed = anomalies.filter(pl.col("kind") == "malformed_key").height
    assert sup.filter(pl.col("_rule").str.starts_with("card_secret:")).height == malformed
    assert sup.height == malformed
    dup_skipped = sum(
        store.read_state("supplier__card_batches", d)["skipped_detail"]["duplicate_row"]
        for d in days
    )
    assert dup_skipped == anomalies.filter(pl.col("kind") == "duplicate_key_in_batch").height
    drift = anomalies.filter(pl.col("kind") == "supplier_schema_drift")
    assert drift.height > 0
    assert files.filter(
        (pl.col("dataset") == "supplier__card_batches") & (pl.col("status") == "rejected")
    ).is_empty()
    # CRM: broken member lines quarantined, nothing else
    crm = _quarantine(lake, "crm__members")
    assert crm.height == anomalies.filter(pl.col("kind") == "crm_bad_row").height


def test_rerun_and_resent_files_change_nothing(landed, tmp_path: Path) -> None:
    _, sources, lake, days, _ = landed
    before = tmp_path / "before"
    shutil.copytree(lake, before)
    day = days[2]
    # a re-sent identical statement arrives, and the day is run again
    original = next(
        (sources / "statements" / "alipay" / "alipay_main").glob(f"*_{day:%Y%m%d}_业务明细.csv")
    )
    resent = original.with_name(original.stem + "(7).csv")
    shutil.copy(original, resent)
    try:
        outcomes = land_days(sources, lake, [day])
        assert outcomes[0].success
        _assert_same_lake(before, lake)
        state = Lake(lake).read_state("alipay__statement_lines", day)
        entry = next(f for f in state["files"] if f["file"].endswith(resent.name))
        assert entry["status"] == "skipped_duplicate"
    finally:
        resent.unlink()
        land_days(sources, lake, [day])


def test_a_corrected_statement_supersedes_the_earlier_one(landed) -> None:
    _, sources, lake, days, _ = landed
    day = days[1]
    original = next(
        (sources / "statements" / "wechat" / "wechat_main").glob(f"*_{day:%Y%m%d}_All.csv")
    )
    lines = original.read_text(encoding="utf-8").splitlines()
    summary_at = next(i for i, ln in enumerate(lines) if ln.startswith("总交易单数"))
    # the channel re-issues the bill without its last line, summary corrected accordingly
    dropped = lines[summary_at - 1].split(",")
    kept = lines[: summary_at - 1]
    values = lines[summary_at + 1].split(",")
    amount = lambda v: round(float(v.lstrip("`")) * 100)  # noqa: E731
    values[0] = "`" + str(int(values[0].lstrip("`")) - 1)
    settle = amount(values[1]) - amount(dropped[12])
    refund = amount(values[2]) - amount(dropped[16])
    fee = amount(values[4]) - amount(dropped[22])
    values[1], values[2], values[4] = (
        f"`{settle / 100:.2f}",
        f"`{refund / 100:.2f}",
        f"`{fee / 100:.2f}000",
    )
    values[5], values[6] = values[1], values[2]
    corrected = original.with_name(original.stem + "_v3.csv")
    corrected.write_text(
        "\r\n".join([*kept, lines[summary_at], ",".join(values)]) + "\r\n", encoding="utf-8"
    )
    try:
        outcomes = land_days(sources, lake, [day])
        assert outcomes[0].success, outcomes[0].failures
        state = Lake(lake).read_state("wechat__bill_lines", day)
        status = {Path(f["file"]).name: f["status"] for f in state["files"]}
        assert status[original.name] == "superseded" and status[corrected.name] == "landed"
        raw = Lake(lake).read_partition("raw", "wechat__bill_lines", day)
        from_corrected = raw.filter(pl.col("_source").str.ends_with(corrected.name))
        assert from_corrected.height == len(kept) - 1
        assert raw.filter(pl.col("_source").str.ends_with(original.name)).is_empty()
    finally:
        corrected.unlink()
        land_days(sources, lake, [day])


def test_a_run_killed_mid_write_then_rerun_equals_an_uninterrupted_run(
    landed, tmp_path: Path
) -> None:
    _, sources, lake, days, _ = landed
    victim = tmp_path / "victim"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--sources",
        str(sources),
        "--lake",
        str(victim),
        "--start",
        str(days[0]),
        "--end",
        str(days[-1]),
    ]
    for delay in (2.0, 4.5, 7.0):  # kill it at several points of the run
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    _assert_same_lake(lake, victim)
    assert not list(victim.rglob(".*.tmp")), "temporary folders left behind"


def test_unmapped_supplier_header_rejects_the_file_and_tampering_fails_accounting(
    landed, tmp_path: Path
) -> None:
    _, sources, _, days, _ = landed
    broken_sources = tmp_path / "sources"
    shutil.copytree(sources, broken_sources)
    supplier_file = next((broken_sources / "suppliers").rglob("*.csv"))
    text = supplier_file.read_bytes()
    header, _, rest = text.partition(b"\r\n")
    supplier_file.write_bytes(header + b",unexpected_column\r\n" + rest)  # a header nobody mapped
    out = cardlake(
        "run",
        "--sources",
        str(broken_sources),
        "--lake",
        str(tmp_path / "lake"),
        "--start",
        str(days[0]),
        "--end",
        str(days[-1]),
    )
    # the unmapped header rejects that file whole (quarantined), and the run still balances
    assert out.returncode == 0, out.stdout + out.stderr
    day = next(d for d in days if f"{d:%Y%m%d}" in supplier_file.name)
    state = Lake(tmp_path / "lake").read_state("supplier__card_batches", day)
    entry = next(f for f in state["files"] if f["file"].endswith(supplier_file.name))
    assert entry["status"] == "rejected" and "supplier_headers.yml" in entry["reason"]
    # a lake whose published partition was tampered with fails the blocking accounting check
    lake = tmp_path / "lake"
    part = lake / "raw" / "shop__orders" / f"business_date={days[1]}" / "_token"
    part.write_text("tampered")
    from pipelines.lib.checks import row_accounting

    result = row_accounting(load_contracts()["shop__orders"], Lake(lake), days[1])
    assert not result.passed
    state_file = Lake(lake).state_path("shop__orders", days[1])
    json.loads(state_file.read_text())  # still readable for the next run to repair


def test_an_unreachable_source_stops_the_run_with_a_readable_message(
    landed, tmp_path: Path
) -> None:
    _, sources, _, days, _ = landed
    out = cardlake(
        "run",
        "--sources",
        str(sources),
        "--lake",
        str(tmp_path / "lake"),
        "--start",
        str(days[1]),
        "--end",
        str(days[2]),
        "--shop-db-url",
        f"sqlite:///{tmp_path / 'missing.sqlite'}",
    )
    assert out.returncode == 1
    assert "shop database not found" in out.stdout and str(days[1]) in out.stdout
    assert str(days[2]) not in out.stdout.split("later days were not run")[0].split("✗")[-1]
    assert "Traceback" not in out.stdout


def test_cardlake_run_without_dates_is_incremental(landed) -> None:
    _, sources, lake, days, _ = landed
    out = cardlake("run", "--sources", str(sources), "--lake", str(lake))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"1 business day {days[-1]}..{days[-1]}" in out.stdout  # only the last landed day again
    assert "Traceback" not in out.stderr and "Error" not in out.stderr


def test_new_files_sensor_requests_exactly_the_days_whose_files_changed(
    landed, tmp_path: Path
) -> None:
    import dagster as dg

    from pipelines.defs.ingest.sensors import new_files_sensor
    from pipelines.resources import LakeResource, SourcesResource

    _, sources, lake, days, _ = landed

    def evaluate() -> list:
        with dg.build_sensor_context(
            resources={
                "sources": SourcesResource(root=str(sources)),
                "lake": LakeResource(root=str(lake)),
            }
        ) as ctx:
            return list(new_files_sensor(ctx))

    assert evaluate() == []  # everything on disk is landed
    day = days[2]
    original = next((sources / "crm").glob(f"members_{day:%Y%m%d}.jsonl"))
    resent = original.with_name(original.stem + "_resend.jsonl")
    existed = resent.exists()
    if not existed:
        shutil.copy(original, resent)
    try:
        requests = evaluate()
        if not existed:
            # the day is landed again, and its models rebuilt and published in the same run
            [request] = requests
            assert request.partition_key == day.isoformat()
            selected = {k.to_user_string() for k in request.asset_selection}
            assert request.asset_selection[0] == dg.AssetKey("raw_crm__members")
            assert {"stg_crm__members", "dim_users", "warehouse"} <= selected
            assert not {k for k in selected if k.startswith("raw_") and k != "raw_crm__members"}
            assert request.run_key.startswith(f"{day}:crm__members=")
    finally:
        if not existed:
            resent.unlink()
    assert evaluate() == []
