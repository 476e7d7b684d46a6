"""The product world: canonical SKUs, the two shops' listings of them, suppliers and their naming.

One canonical SKU (the truth) is listed by the main shop as a ``goods`` row, by the substation as a
``commodity`` row, and delivered by one supplier under that supplier's own name and code; each
names it its own way. ``_truth/products.parquet`` maps every one of those names back to the SKU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import UPPER_ALNUM, full_width, random_codes

PERIODS = {"M1": ("月卡", 1), "M3": ("季卡", 3), "M12": ("年卡", 12)}

# category code, Chinese name, main-shop group name, substation category name, manual delivery?
CATEGORIES = [
    ("GAME", "游戏点卡", "🎮游戏点卡", "游戏充值"),
    ("TOPUP", "话费充值", "📱话费充值", "话费直充"),
    ("VIDEO", "视频会员", "🎬影视会员", "视频VIP"),
    ("MUSIC", "音乐会员", "🎵音乐会员", "音乐VIP"),
    ("GIFT", "礼品卡", "🎁礼品卡券", "购物卡"),
    ("SOFT", "软件会员", "💻软件激活", "软件会员"),
]
# Emoji cannot be encoded in GBK (the Alipay statement); group names never reach a statement,
# but strip them anyway so that every shop text is GBK-safe.
CATEGORIES = [(c, n, g.encode("gbk", "ignore").decode("gbk"), s) for c, n, g, s in CATEGORIES]

# real brands: (category, brand code, name, aliases, faces or periods)
REAL_BRANDS = [
    ("GAME", "QQB", "腾讯QQ币", ("Q币", "QQ币", "腾讯Q币"), (10, 30, 50, 100, 200, 500)),
    ("GAME", "NETEASE", "网易一卡通", ("网易点卡", "网易一卡通点卡"), (10, 15, 30, 50, 100, 350)),
    ("GAME", "JCARD", "骏网一卡通", ("骏网卡", "骏卡"), (10, 30, 50, 100, 300, 500)),
    ("GAME", "WANMEI", "完美一卡通", ("完美点卡",), (15, 30, 50, 100)),
    ("GAME", "SHANDA", "盛大一卡通", ("盛大点卡", "盛趣一卡通"), (10, 30, 45, 100)),
    ("GAME", "WOW", "魔兽世界点卡", ("魔兽点卡", "WOW点卡"), (15, 30, 90)),
    ("TOPUP", "CMCC", "中国移动话费", ("移动话费", "移动充值"), (10, 20, 30, 50, 100, 200)),
    ("TOPUP", "CUCC", "中国联通话费", ("联通话费", "联通充值"), (10, 20, 30, 50, 100, 200)),
    ("TOPUP", "CTCC", "中国电信话费", ("电信话费", "电信充值"), (10, 20, 30, 50, 100, 200)),
    ("VIDEO", "IQIYI", "爱奇艺黄金VIP", ("爱奇艺VIP", "奇艺会员"), ("M1", "M3", "M12")),
    ("VIDEO", "TXVIDEO", "腾讯视频VIP", ("腾讯视频会员", "TX视频VIP"), ("M1", "M3", "M12")),
    ("VIDEO", "YOUKU", "优酷VIP会员", ("优酷会员", "优酷VIP"), ("M1", "M3", "M12")),
    ("VIDEO", "MGTV", "芒果TV会员", ("芒果会员", "芒果TV VIP"), ("M1", "M3", "M12")),
    ("VIDEO", "BILI", "哔哩哔哩大会员", ("B站大会员", "bilibili大会员"), ("M1", "M3", "M12")),
    ("MUSIC", "QQMUSIC", "QQ音乐豪华绿钻", ("QQ音乐绿钻", "绿钻"), ("M1", "M3", "M12")),
    ("MUSIC", "NCM", "网易云音乐黑胶VIP", ("网易云黑胶", "网易云VIP"), ("M1", "M3", "M12")),
    ("MUSIC", "KUGOU", "酷狗音乐豪华VIP", ("酷狗VIP", "酷狗会员"), ("M1", "M3", "M12")),
    ("GIFT", "JDE", "京东E卡", ("京东卡", "JD E卡", "京东礼品卡"), (50, 100, 200, 500, 1000)),
    ("GIFT", "APPSTORE", "App Store充值卡", ("苹果充值卡", "iTunes卡"), (50, 100, 200, 500)),
    ("GIFT", "STEAM", "Steam钱包充值卡", ("Steam卡", "蒸汽钱包"), (50, 100, 200, 400)),
    ("GIFT", "TMALL", "天猫超市卡", ("猫超卡", "天猫卡"), (100, 200, 500)),
    ("SOFT", "WPS", "WPS超级会员", ("WPS会员",), ("M1", "M12")),
    ("SOFT", "BDPAN", "百度网盘超级会员", ("百度云SVIP", "网盘SVIP"), ("M1", "M3", "M12")),
    ("SOFT", "XUNLEI", "迅雷白金会员", ("迅雷会员",), ("M1", "M12")),
]
MEMBERSHIP_LIST_PRICE = {"VIDEO": (25, 68, 248), "MUSIC": (15, 45, 150), "SOFT": (30, 88, 298)}

# synthetic game titles for the long tail of the catalogue (a real 卡盟 lists thousands of games)
_W1 = list("天龙剑侠梦幻仙侠神武大话问道倩女诛仙完美热血传奇征途逆水寒蜀门天刀九阴")
_W2 = list("西游奇缘江湖情缘世界幻想战纪风云传说英雄王座星辰荣耀")
GAME_UNITS = ("元宝", "点券", "钻石", "金币")
GAME_TIERS = (6, 30, 68, 128, 328, 648)

SUPPLIER_NAMES = [
    ("S01", "鑫达卡业"),
    ("S02", "速充科技"),
    ("S03", "云卡供应链"),
    ("S04", "聚点数娱"),
    ("S05", "优卡网络"),
    ("S06", "卡之家"),
    ("S07", "蓝海卡券"),
    ("S08", "星河数卡"),
    ("S09", "易购卡业"),
    ("S10", "千寻卡密"),
    ("S11", "北极星数字"),
    ("S12", "海豚卡券"),
]


@dataclasses.dataclass(frozen=True)
class SupplierFormat:
    """How one supplier writes its delivery files (headers change: ``drift_header``)."""

    code: str
    name: str
    file_kind: str  # csv | xlsx
    encoding: str
    header: tuple[str, ...]  # logical fields in file order, renamed by ``names``
    names: dict[str, str]
    name_style: int
    batch_prefix: str
    expiry_format: str
    has_card_no: bool
    drift_header: dict[str, str]  # renames applied after the supplier's schema drift


_HEADERS = [
    {
        "batch_no": "批次号",
        "product_name": "商品名称",
        "supplier_sku": "商品编码",
        "face_value": "面值",
        "unit_cost": "进价",
        "card_no": "卡号",
        "card_secret": "卡密",
        "expiry": "有效期",
    },
    {
        "batch_no": "batch_no",
        "product_name": "product_name",
        "supplier_sku": "sku",
        "face_value": "face_value",
        "unit_cost": "unit_cost",
        "card_no": "card_number",
        "card_secret": "card_secret",
        "expiry": "expire_date",
    },
    {
        "batch_no": "批次",
        "product_name": "产品名称",
        "supplier_sku": "产品编号",
        "face_value": "面额(元)",
        "unit_cost": "单价(元)",
        "card_no": "卡号",
        "card_secret": "密码",
        "expiry": "过期时间",
    },
    {
        "batch_no": "入库批次",
        "product_name": "品名",
        "supplier_sku": "货号",
        "face_value": "面额",
        "unit_cost": "结算价",
        "card_no": "序列号",
        "card_secret": "卡密",
        "expiry": "截止日期",
    },
]
_DRIFTS = [
    {"unit_cost": "采购价", "card_secret": "卡密/激活码"},
    {"unit_cost": "cost", "expiry": "valid_until"},
    {"face_value": "面值(元)", "batch_no": "批次编号"},
    {"product_name": "商品名", "unit_cost": "进货价"},
]


def supplier_formats() -> list[SupplierFormat]:
    out = []
    for i, (code, name) in enumerate(SUPPLIER_NAMES):
        style = i % 4
        fields = [
            "batch_no",
            "product_name",
            "supplier_sku",
            "face_value",
            "unit_cost",
            "card_no",
            "card_secret",
            "expiry",
        ]
        has_card_no = i % 3 != 2
        if not has_card_no:
            fields.remove("card_no")
        if i % 2:  # some suppliers put the key first
            fields = [f for f in fields if f not in ("card_no", "card_secret")] + [
                f for f in ("card_no", "card_secret") if f in fields
            ]
        out.append(
            SupplierFormat(
                code=code,
                name=name,
                file_kind="xlsx" if i >= 9 else "csv",
                encoding="gbk" if i in (3, 7) else "utf-8-sig" if i % 2 == 0 else "utf-8",
                header=tuple(fields),
                names=_HEADERS[style],
                name_style=i % 5,
                batch_prefix=("PC", "B", "RK", "LOT")[i % 4],
                expiry_format=("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d 23:59:59")[i % 4],
                has_card_no=has_card_no,
                drift_header=_DRIFTS[style],
            )
        )
    return out


def _face_label(face: int | str) -> str:
    return PERIODS[face][0] if isinstance(face, str) else f"{face}元"


def _supplier_name(style: int, brand: str, alias: str, face: int | str, variant: str) -> str:
    label = _face_label(face)
    if style == 0:
        return f"{brand}{label}"
    if style == 1:
        return f"{alias} {label.removesuffix('元')}"
    if style == 2:
        return f"{alias}{label}{'直充' if variant == 'DIRECT' else ''}"
    if style == 3:
        return f"{brand}-{label}"
    return f"【{alias}】{label}"


def name_variant(name: str, kind: int) -> str:
    """One of the ways a product name gets mangled on its way through people and spreadsheets."""
    if kind == 0:
        return full_width(name)
    if kind == 1:
        return name + "  "
    if kind == 2:
        return name.replace("元", "RMB") if "元" in name else " " + name
    return name.replace(" ", "").replace("元", "块") if "元" in name else name + " "


def build_catalog(cfg: SimConfig) -> dict[str, pl.DataFrame]:
    """Canonical SKUs, main-shop goods, substation commodities, suppliers and supplier items."""
    rng = cfg.rng("catalog")
    rows: list[tuple] = []  # (category, brand_code, brand, aliases, face, variant, is_real)
    for cat, code, brand, aliases, faces in REAL_BRANDS:
        for face in faces:
            variant = face if isinstance(face, str) else ("DIRECT" if cat == "TOPUP" else "STD")
            rows.append((cat, code, brand, aliases, face, variant, True))
    n_synth = max(0, cfg.skus - len(rows))
    n_brands = -(-n_synth // len(GAME_TIERS))
    for b in range(n_brands):
        w1 = _W1[b % len(_W1)] + _W1[(b // len(_W1) + 7) % len(_W1)]
        w2 = _W2[(b // 3) % len(_W2)] + _W2[(b // (3 * len(_W2)) + 5) % len(_W2)]
        unit = GAME_UNITS[b % len(GAME_UNITS)]
        brand = f"{w1}{w2}{unit}"
        aliases = (f"{w1}{w2}", f"{w1}{w2}手游{unit}")
        for face in GAME_TIERS:
            rows.append(("GAME", f"G{b:05d}", brand, aliases, face, "STD", False))
    if len(rows) > cfg.skus:  # keep every real brand's first SKU, then fill in catalogue order
        rows = rows[: cfg.skus]
    n = len(rows)

    cat = np.array([r[0] for r in rows])
    list_price_yuan = np.array(
        [
            MEMBERSHIP_LIST_PRICE[r[0]][list(PERIODS).index(r[4])]
            if isinstance(r[4], str)
            else r[4]
            for r in rows
        ],
        dtype=np.int64,
    )
    face_fen = list_price_yuan * 100
    is_member = np.isin(cat, ["VIDEO", "MUSIC", "SOFT"])
    discount = np.where(is_member, rng.uniform(0.55, 0.85, n), rng.uniform(0.93, 1.0, n))
    price_fen = np.maximum(10, np.round(face_fen * discount / 10).astype(np.int64) * 10 - 1)
    price_fen = np.where(price_fen % 100 == 99, price_fen, price_fen + 1)  # .x9 / .00 endings
    cost_fen = np.round(price_fen * rng.uniform(0.86, 0.96, n)).astype(np.int64)

    # popularity: real brands lead, the long tail follows (Zipf-like)
    is_real = np.array([r[6] for r in rows])
    order_key = np.where(is_real, 0.0, 1.0) + rng.uniform(0, 0.999, n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(order_key, kind="stable")] = np.arange(n)
    popularity = 1.0 / np.power(rank + 1.0, 0.95)
    launch_day = np.where(
        (rng.uniform(size=n) < 0.03) & (cfg.days > 1) & ~is_real,
        rng.integers(1, max(2, cfg.days), n),
        0,
    )
    manual = cat == "TOPUP"  # 直充: delivered by staff, no card keys

    in_main = rng.uniform(size=n) < 0.85
    in_sub = rng.uniform(size=n) < 0.45
    in_main |= ~(in_main | in_sub)

    formats = supplier_formats()
    # each SKU has one supplier; the XLSX suppliers are the small ones
    sup_weight = np.array([3, 3, 2.5, 2.5, 2, 2, 2, 1.5, 1.5, 0.35, 0.3, 0.25])
    supplier_idx = rng.choice(len(formats), size=n, p=sup_weight / sup_weight.sum())

    sku_code = np.array(
        [f"{r[0]}-{r[1]}-{list_price_yuan[i]:04d}-{r[5]}" for i, r in enumerate(rows)]
    )
    canonical = np.array([f"{r[2]}{_face_label(r[4])}" for r in rows])
    skus = pl.DataFrame(
        {
            "sku_id": np.arange(1, n + 1, dtype=np.int64),
            "sku_code": sku_code,
            "category": cat,
            "brand_code": [r[1] for r in rows],
            "brand": [r[2] for r in rows],
            "face_value_yuan": list_price_yuan,
            "variant": [r[5] for r in rows],
            "canonical_name": canonical,
            "price_fen": price_fen,
            "cost_fen": cost_fen,
            "popularity": popularity,
            "launch_day": launch_day.astype(np.int64),
            "is_manual": manual,
            "in_main": in_main,
            "in_substation": in_sub,
            "supplier_code": np.array([f.code for f in formats])[supplier_idx],
        }
    )

    variant_mess = cfg.profile.product_name_variant
    # main shop goods (dujiaoka): one row per listed SKU, ids in listing order
    main_idx = np.flatnonzero(in_main)
    perm = rng.permutation(len(main_idx))
    main_idx = main_idx[perm]
    style = rng.integers(0, 3, len(main_idx))
    mangle = rng.uniform(size=len(main_idx)) < variant_mess / 3
    mangle_kind = rng.integers(0, 4, len(main_idx))
    gd_names = []
    for j, i in enumerate(main_idx):
        r = rows[i]
        label = _face_label(r[4])
        name = (
            f"{r[2]}{label}",
            f"【自动发货】{r[2]}{label}" if not manual[i] else f"【人工直充】{r[2]}{label}",
            f"{r[2]} {label} 卡密" if not manual[i] else f"{r[2]} {label}",
        )[style[j]]
        gd_names.append(name_variant(name, mangle_kind[j]) if mangle[j] else name)
    cat_ids = {c[0]: k + 1 for k, c in enumerate(CATEGORIES)}
    goods = pl.DataFrame(
        {
            "goods_id": np.arange(1, len(main_idx) + 1, dtype=np.int64),
            "sku_id": main_idx + 1,
            "group_id": np.array([cat_ids[c] for c in cat[main_idx]], dtype=np.int64),
            "gd_name": gd_names,
            "retail_price_fen": face_fen[main_idx],
            "actual_price_fen": price_fen[main_idx],
            "type": np.where(manual[main_idx], 2, 1),
            "name_mangled": mangle,
        }
    )

    sub_idx = np.flatnonzero(in_sub)
    sub_idx = sub_idx[rng.permutation(len(sub_idx))]
    sub_price = np.round(price_fen[sub_idx] * rng.uniform(0.98, 1.05, len(sub_idx))).astype(
        np.int64
    )
    sub_style = rng.integers(0, 5, len(sub_idx))
    sub_names = [
        _supplier_name(int(sub_style[j]), rows[i][2], rows[i][3][0], rows[i][4], rows[i][5])
        for j, i in enumerate(sub_idx)
    ]
    commodities = pl.DataFrame(
        {
            "commodity_id": np.arange(1, len(sub_idx) + 1, dtype=np.int64),
            "sku_id": sub_idx + 1,
            "category_id": np.array([cat_ids[c] for c in cat[sub_idx]], dtype=np.int64),
            "name": sub_names,
            "code": random_codes(rng, len(sub_idx), 8, UPPER_ALNUM),
            "factory_price_fen": cost_fen[sub_idx],
            "price_fen": sub_price,
            "delivery_way": np.where(manual[sub_idx], 1, 0),
        }
    )

    # supplier items: the supplier's own code and name for each SKU it delivers
    sup_fmt = [formats[k] for k in supplier_idx]
    item_names = [
        _supplier_name(sup_fmt[i].name_style, r[2], r[3][-1], r[4], r[5])
        for i, r in enumerate(rows)
    ]
    supplier_items = pl.DataFrame(
        {
            "sku_id": np.arange(1, n + 1, dtype=np.int64),
            "supplier_code": skus["supplier_code"],
            "supplier_sku": np.char.add(
                np.array([f.batch_prefix[:1] for f in sup_fmt]),
                random_codes(rng, n, 7, UPPER_ALNUM),
            ),
            "supplier_name": item_names,
        }
    )
    suppliers = pl.DataFrame(
        {
            "supplier_code": [f.code for f in formats],
            "supplier_name": [f.name for f in formats],
            "file_kind": [f.file_kind for f in formats],
            # everyday share of defective (invalid) keys per supplier
            "defect_rate": np.round(rng.uniform(0.002, 0.012, len(formats)), 4),
        }
    )
    return {
        "skus": skus,
        "goods": goods,
        "commodities": commodities,
        "supplier_items": supplier_items,
        "suppliers": suppliers,
    }
