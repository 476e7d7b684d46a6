"""File sources: the CRM's daily member snapshots (JSONL) and the suppliers' key deliveries."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import polars as pl

from simulator.catalog import name_variant, supplier_formats
from simulator.config import SimConfig
from simulator.identity import crm_members
from simulator.text import email_forms, local_time, phone_forms, yuan
from simulator.truth import ANOMALY_SCHEMA


def crm_records(cfg: SimConfig, people: pl.DataFrame) -> pl.DataFrame:
    """One row per CRM member record (a person registered twice has two), with change times."""
    rng = cfg.rng("crm")
    members = crm_members(people)
    n = members.height
    mess = cfg.profile
    twice = rng.uniform(size=n) < mess.crm_duplicate_member
    changes = rng.uniform(size=n) < mess.crm_contact_change
    reg_offset = np.where(
        members["join_day"].to_numpy() == 0,
        -rng.integers(1, 700 * 86400, n),
        members["join_day"].to_numpy() * 86400 + rng.integers(0, 86400, n),
    )
    first = members.with_columns(
        record=pl.lit(0),
        registered_at=pl.Series(cfg.start_epoch + reg_offset),
        change_at=pl.Series(
            np.where(changes, cfg.start_epoch + rng.integers(0, cfg.days * 86400, n), -1)
        ).replace(-1, None),
    )
    second = first.filter(pl.Series(twice)).with_columns(
        record=pl.lit(1),
        registered_at=pl.col("registered_at")
        + pl.Series(rng.integers(3600, 90 * 86400, int(twice.sum()))),
        change_at=pl.lit(None, dtype=pl.Int64),
    )
    recs = pl.concat([first, second]).sort("person_id", "record")
    m = recs.height
    ids = rng.permutation(np.arange(10_000_000, 10_000_000 + m * 3))[:m]
    recs = recs.with_columns(
        member_id=pl.Series(np.char.add("M", ids.astype(str))),
        _pf=pl.Series(
            np.where(rng.uniform(size=m) < mess.phone_format_variant, rng.integers(1, 4, m), 0)
        ),
        _ef=pl.Series(np.where(rng.uniform(size=m) < mess.email_variant, rng.integers(1, 4, m), 0)),
        level=pl.Series(
            np.array(["V1", "V2", "V3", "V4", "V5"])[
                np.minimum(4, (recs["activity"].to_numpy() // 1.5).astype(int))
            ]
        ),
    )
    return recs


def crm_snapshot(cfg: SimConfig, recs: pl.DataFrame, day: int) -> pl.DataFrame:
    """The CRM export as of the end of business day ``day``."""
    as_of = cfg.start_epoch + (day + 1) * 86400
    cur = recs.filter(pl.col("registered_at") < as_of)
    changed = pl.col("change_at").is_not_null() & (pl.col("change_at") < as_of)
    return cur.select(
        "member_id",
        phone=phone_forms(pl.when(changed).then("phone_new").otherwise("phone"), pl.col("_pf")),
        email=email_forms(pl.col("email"), pl.col("_ef")),
        qq="qq",
        wechat_openid="wechat_openid",
        nickname="nickname",
        level="level",
        registered_at=local_time(pl.col("registered_at")),
        updated_at=local_time(pl.when(changed).then("change_at").otherwise("registered_at")),
    )


def write_crm(
    cfg: SimConfig, people: pl.DataFrame, root: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily full snapshots ``crm/members_YYYYMMDD.jsonl``; returns (member records, anomalies)."""
    rng = cfg.rng("crm_files")
    recs = crm_records(cfg, people)
    out = root / "crm"
    out.mkdir(parents=True, exist_ok=True)
    anomalies = []
    for d in range(cfg.days):
        day = cfg.day(d)
        snap = crm_snapshot(cfg, recs, d)
        k = int(rng.binomial(snap.height, cfg.profile.crm_bad_row)) if snap.height else 0
        if k:
            pick = np.sort(rng.choice(snap.height, size=k, replace=False))
            bad = snap[pick].with_columns(
                member_id=pl.when(pl.int_range(pl.len()) % 2 == 0)
                .then(None)
                .otherwise("member_id"),
                registered_at=pl.when(pl.int_range(pl.len()) % 2 == 1)
                .then(pl.lit("N/A"))
                .otherwise("registered_at"),
            )
            snap = pl.concat([snap, bad])
            for row in bad.select("member_id", "registered_at").iter_rows():
                anomalies.append(
                    (
                        "crm_bad_row",
                        row[0] or "",
                        day,
                        "missing member_id" if row[0] is None else "unparsable registered_at",
                    )
                )
        buf = io.BytesIO()
        snap.write_ndjson(buf)
        path = out / f"members_{day:%Y%m%d}.jsonl"
        path.write_bytes(buf.getvalue())
        if rng.uniform() < cfg.profile.resent_file:
            (out / f"members_{day:%Y%m%d}_resend.jsonl").write_bytes(buf.getvalue())
            anomalies.append(
                (
                    "resent_file",
                    f"members_{day:%Y%m%d}_resend.jsonl",
                    day,
                    f"identical re-send of {path.name}",
                )
            )
    per_record = pl.concat(
        [
            _anoms_of(
                recs.filter(pl.col("record") == 1),
                cfg,
                "crm_duplicate_member",
                pl.col("member_id"),
                "registered_at",
                "the same person registered a second time",
            ),
            _anoms_of(
                recs.filter(pl.col("change_at").is_not_null()),
                cfg,
                "crm_contact_change",
                pl.col("member_id"),
                "change_at",
                "phone changed",
            ),
        ]
    ).with_columns(source=pl.lit("crm"))
    return recs, pl.concat([_anoms(anomalies, "crm"), per_record.select(list(ANOMALY_SCHEMA))])


def _anoms_of(
    frame: pl.DataFrame, cfg: SimConfig, kind: str, record: pl.Expr, at: str, detail: str
) -> pl.DataFrame:
    """One anomaly row per row of ``frame``, as whole columns (there can be thousands)."""
    return frame.select(
        kind=pl.lit(kind),
        source=pl.lit(""),
        record=record,
        day=pl.lit(cfg.start) + pl.duration(days=(pl.col(at) - cfg.start_epoch) // 86400),
        detail=pl.lit(detail),
    )


def _anoms(rows: list[tuple], source: str) -> pl.DataFrame:
    return pl.DataFrame(
        [{"kind": k, "source": source, "record": r, "day": d, "detail": t} for k, r, d, t in rows],
        schema=ANOMALY_SCHEMA,
    )


def supplier_rows(
    cfg: SimConfig, d: int, keys: pl.DataFrame, batches: pl.DataFrame, catalog: dict
) -> pl.DataFrame:
    """Every line of the supplier files of the keys arriving on day ``d`` (with duplicates repeated
    and malformed keys broken)."""
    rng = cfg.rng(f"supplier_rows/{d}")
    items = catalog["supplier_items"]
    skus = catalog["skus"]
    fmts = {f.code: f for f in supplier_formats()}
    lines = (
        keys.join(batches.select("batch_id", "arrival_day"), on="batch_id", how="left")
        .join(items.select("sku_id", "supplier_sku", "supplier_name"), on="sku_id", how="left")
        .join(skus.select("sku_id", "face_value_yuan"), on="sku_id", how="left")
    )
    dup = lines.filter(pl.col("is_duplicated"))
    lines = pl.concat([lines, dup]).sort("batch_id", "key_id")
    n = lines.height
    # malformed keys take the three kinds in turn, so even a small shop shows every kind
    malformed = lines["is_malformed"].to_numpy()
    broken = (np.cumsum(malformed) - 1) % 3
    secret = (
        pl.when(~pl.col("is_malformed"))
        .then("secret")
        .otherwise(
            pl.when(pl.Series(broken) == 0)
            .then(pl.lit(""))
            .when(pl.Series(broken) == 1)
            .then(pl.col("secret").str.slice(0, 5))
            .otherwise(
                pl.col("secret").str.slice(0, 8) + pl.lit(" ?? ") + pl.col("secret").str.slice(8)
            )
        )
    )
    expiry_days = rng.integers(365, 3 * 365, n)
    prefix = pl.col("supplier_code").replace_strict({c: f.batch_prefix for c, f in fmts.items()})
    return lines.with_columns(
        card_secret=secret,
        expiry_at=pl.col("received_at") + pl.Series(expiry_days) * 86400,
        batch_no=pl.concat_str(
            [
                prefix,
                local_time(pl.col("received_at"), "%Y%m%d"),
                pl.col("batch_id").cast(pl.Utf8).str.zfill(6),
            ]
        ),
    )


class SupplierWriter:
    """One delivery file per supplier, shop and arrival day, in the supplier's own format.

    ``write_day`` writes the files of the keys arriving on a day; ``anomaly_rows`` and
    ``names_seen`` give what the answer key needs (every distinct (supplier, supplier SKU, written
    name, SKU)).
    """

    def __init__(self, cfg: SimConfig, catalog: dict, root: Path) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.root = root
        self.fmts = {f.code: f for f in supplier_formats()}
        rng = cfg.rng("supplier_drift")
        self.drifting = {c for c in self.fmts if rng.uniform() < cfg.profile.supplier_schema_drift}
        self.drift_day = max(1, cfg.days // 2)
        self.anomalies: list[tuple] = []
        self.per_key: list[pl.DataFrame] = []
        self.names: list[pl.DataFrame] = []

    def write_day(self, d: int, keys: pl.DataFrame, batches: pl.DataFrame) -> None:
        cfg = self.cfg
        rng = cfg.rng(f"supplier_files/{d}")
        rows = supplier_rows(cfg, d, keys, batches, self.catalog)
        shop_tag = {"main": "主站", "substation": "分站"}
        for (code, shop, day_idx), part in sorted(
            rows.partition_by(["supplier_code", "shop", "arrival_day"], as_dict=True).items()
        ):
            fmt = self.fmts[code]
            day = cfg.start + dt.timedelta(days=int(day_idx))
            drifted = code in self.drifting and day_idx >= self.drift_day
            names = {**fmt.names, **(fmt.drift_header if drifted else {})}
            mangle = rng.uniform() < cfg.profile.product_name_variant
            kind = int(rng.integers(0, 4))
            product = part["supplier_name"].to_list()
            if mangle:
                product = [name_variant(p, kind) for p in product]
            self.names.append(
                part.select("supplier_code", "supplier_sku", "sku_id")
                .with_columns(product_name=pl.Series(product))
                .unique()
            )
            values = {
                "batch_no": part["batch_no"],
                "product_name": pl.Series(product),
                "supplier_sku": part["supplier_sku"],
                "face_value": part["face_value_yuan"].cast(pl.Utf8),
                "unit_cost": part.select(yuan(pl.col("cost_fen")))[:, 0],
                "card_no": part["card_no"],
                "card_secret": part["card_secret"],
                "expiry": part.select(local_time(pl.col("expiry_at"), fmt.expiry_format))[:, 0],
            }
            frame = pl.DataFrame({names[f]: values[f] for f in fmt.header})
            if drifted:
                frame = frame.with_columns(pl.lit("").alias("备注"))
            stem = f"{fmt.name}_{shop_tag[shop]}_发货单_{day:%Y%m%d}"
            folder = self.root / "suppliers" / code
            folder.mkdir(parents=True, exist_ok=True)
            if fmt.file_kind == "xlsx":
                _write_xlsx(frame, folder / f"{stem}.xlsx", day)
            else:
                text = frame.write_csv(line_terminator="\r\n")
                (folder / f"{stem}.csv").write_bytes(text.encode(fmt.encoding))
            if drifted and day_idx == self.drift_day:
                self.anomalies.append(
                    (
                        "supplier_schema_drift",
                        f"{code}/{stem}",
                        day,
                        "header changed: "
                        + ", ".join(f"{fmt.names[k]}→{v}" for k, v in fmt.drift_header.items()),
                    )
                )
            if mangle:
                self.anomalies.append(
                    (
                        "product_name_variant",
                        f"{code}/{stem}",
                        day,
                        "product names mangled (full-width / spaces / 元 variants)",
                    )
                )
        key_ref = pl.concat_str(
            ["supplier_code", "batch_no", pl.col("key_id").cast(pl.Utf8)], separator="/"
        )
        self.per_key.append(
            pl.concat(
                [
                    _anoms_of(
                        rows.filter(pl.col("is_malformed")),
                        cfg,
                        "malformed_key",
                        key_ref,
                        "received_at",
                        "card secret empty, truncated or with junk",
                    ),
                    _anoms_of(
                        rows.filter(pl.col("is_duplicated")).unique("key_id", maintain_order=True),
                        cfg,
                        "duplicate_key_in_batch",
                        key_ref,
                        "received_at",
                        "the same key appears twice in the batch",
                    ),
                ]
            )
            .with_columns(source=pl.lit("suppliers"))
            .select(list(ANOMALY_SCHEMA))
        )

    def anomaly_rows(self) -> pl.DataFrame:
        return pl.concat([_anoms(self.anomalies, "suppliers"), *self.per_key])

    def names_seen(self) -> pl.DataFrame:
        return pl.concat(self.names).unique().sort("supplier_code", "supplier_sku", "product_name")


def _write_xlsx(frame: pl.DataFrame, path: Path, day: dt.date) -> None:
    """XLSX with fixed document metadata, so the same rows give the same bytes."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    wb.set_properties({"created": dt.datetime.combine(day, dt.time(9, 0)), "author": "supplier"})
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, frame.columns)
    for r, row in enumerate(frame.iter_rows(), start=1):
        # xlsxwriter writes cell by cell; constant_memory streams rows straight to disk
        ws.write_row(r, 0, row)
    wb.close()
