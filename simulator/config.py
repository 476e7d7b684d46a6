"""Parameters of a simulated shop: size, calendar, channel accounts and the mess profile.

Every random choice of the simulator flows from ``SimConfig.seed`` through named child streams
(``SimConfig.rng(name)``), so one component's draws never shift another's: the same seed and
parameters give the same sources, whatever order the components run in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Literal

import numpy as np

MessProfileName = Literal["none", "realistic", "hostile"]

#: Seconds east of UTC of the shops' local time (Asia/Shanghai has no DST).
CST_OFFSET_S = 8 * 3600


@dataclasses.dataclass(frozen=True)
class MessProfile:
    """Rates of every kind of mess the simulated sources carry; 0 switches a kind off.

    Rates are per eligible record (per order, per member, per key, per file) unless noted.
    """

    # shop databases: extra bad rows, as a share of the day's orders
    bad_row_missing_key: float = 0.0
    bad_row_nonpositive_amount: float = 0.0
    bad_row_unparsable_date: float = 0.0
    bad_row_unknown_product: float = 0.0
    bad_row_future_timestamp: float = 0.0
    test_order: float = 0.0
    # payments, per paid order
    lost_callback: float = 0.0
    duplicate_payment: float = 0.0
    amount_mismatch: float = 0.0
    missing_statement_line: float = 0.0
    order_no_affix: float = 0.0
    #: share of payments in the last minute of a day whose statement line lands in the next day's file
    day_boundary: float = 0.0
    #: share of refunds that succeed more than a day after payment (up to 14 days)
    late_refund: float = 0.0
    # files, per file
    resent_file: float = 0.0
    statement_footer_mismatch: float = 0.0
    #: 1 = the substation's Alipay account sends the export as Alipay's site writes it today: every
    #: text cell ends in a tab (not only the IDs) and the refund footer reads 商家实收退款共…,
    #: 商家优惠退款共…; the main shop's keeps the older layout
    alipay_current_export: float = 0.0
    #: per file: opened and saved again in a spreadsheet before it was sent (re-encoded, padded
    #: with commas, IDs as ="…" formulas, blank rows after the data; simulator/spreadsheet.py)
    statement_resaved: float = 0.0
    #: per file: saved again with its long IDs in scientific notation (digits lost), then sent
    #: again as exported (``_v2``)
    statement_scientific_ids: float = 0.0
    #: per Alipay file in the older layout: saved again in the spreadsheet's default date format,
    #: every time cut to its minute (``2026/10/5 8:00``), then sent again as exported (``_v2``);
    #: WeChat's times and today's Alipay layout's are text (a backtick, a tab) it leaves alone
    statement_times_to_minute: float = 0.0
    # identities, per member / order
    crm_duplicate_member: float = 0.0
    crm_contact_change: float = 0.0
    crm_bad_row: float = 0.0
    phone_format_variant: float = 0.0
    email_variant: float = 0.0
    # products, per name
    product_name_variant: float = 0.0
    # supplier files, per key / per supplier
    duplicate_key_in_batch: float = 0.0
    malformed_key: float = 0.0
    supplier_schema_drift: float = 0.0
    #: 1 = one supplier has a bad week (its invalid-key rate spikes) inside the horizon
    bad_supplier_episode: float = 0.0
    #: share of replenishment batches that arrive a day late (stock-outs)
    late_batch: float = 0.0

    @classmethod
    def named(cls, name: MessProfileName) -> MessProfile:
        if name == "none":
            return cls()
        if name == "realistic":
            return cls(
                bad_row_missing_key=0.0005,
                bad_row_nonpositive_amount=0.0005,
                bad_row_unparsable_date=0.0003,
                bad_row_unknown_product=0.0003,
                bad_row_future_timestamp=0.0002,
                test_order=0.001,
                lost_callback=0.002,
                duplicate_payment=0.001,
                amount_mismatch=0.0005,
                missing_statement_line=0.0003,
                order_no_affix=0.03,
                day_boundary=0.5,
                late_refund=0.25,
                resent_file=0.05,
                statement_footer_mismatch=0.0,
                alipay_current_export=1.0,
                statement_resaved=0.03,
                crm_duplicate_member=0.03,
                crm_contact_change=0.03,
                crm_bad_row=0.001,
                phone_format_variant=0.35,
                email_variant=0.05,
                product_name_variant=0.3,
                duplicate_key_in_batch=0.0005,
                malformed_key=0.0005,
                supplier_schema_drift=0.25,
                bad_supplier_episode=1.0,
                late_batch=0.05,
            )
        if name == "hostile":
            return cls(
                bad_row_missing_key=0.005,
                bad_row_nonpositive_amount=0.005,
                bad_row_unparsable_date=0.003,
                bad_row_unknown_product=0.003,
                bad_row_future_timestamp=0.002,
                test_order=0.005,
                lost_callback=0.01,
                duplicate_payment=0.005,
                amount_mismatch=0.005,
                missing_statement_line=0.003,
                order_no_affix=0.2,
                day_boundary=1.0,
                late_refund=0.6,
                resent_file=0.3,
                statement_footer_mismatch=0.1,
                alipay_current_export=1.0,
                statement_resaved=0.15,
                statement_scientific_ids=0.08,
                statement_times_to_minute=0.2,
                crm_duplicate_member=0.1,
                crm_contact_change=0.1,
                crm_bad_row=0.01,
                phone_format_variant=0.8,
                email_variant=0.3,
                product_name_variant=0.8,
                duplicate_key_in_batch=0.005,
                malformed_key=0.005,
                supplier_schema_drift=1.0,
                bad_supplier_episode=1.0,
                late_batch=0.2,
            )
        raise ValueError(f"unknown mess profile {name!r}: use none, realistic or hostile")


@dataclasses.dataclass(frozen=True)
class ChannelAccount:
    """One merchant account at a payment channel; it sends one statement file a day."""

    key: str  # stable short name used in paths and in the truth files
    channel: Literal["alipay", "wechat"]
    shop: Literal["main", "substation"]
    account_no: str  # Alipay PID or WeChat 商户号
    app_id: str  # WeChat 公众账号ID (empty for Alipay)
    fee_rate_bp: int  # service fee in basis points of 0.01% (60 = 0.60%)
    layout: Literal["alipay", "wechat_all", "wechat_legacy"]
    affixes: tuple[str, ...]  # how this integration may decorate the merchant order number


CHANNEL_ACCOUNTS: tuple[ChannelAccount, ...] = (
    ChannelAccount(
        "alipay_main", "alipay", "main", "2088631234560187", "", 60, "alipay", ("DJ", "_1", "zfb_")
    ),
    ChannelAccount(
        "wechat_main",
        "wechat",
        "main",
        "1612345678",
        "wx8d1c2f3a4b5e6f70",
        60,
        "wechat_all",
        ("WX", "-01"),
    ),
    ChannelAccount(
        "alipay_substation",
        "alipay",
        "substation",
        "2088719876540023",
        "",
        38,
        "alipay",
        ("FZ", "_2"),
    ),
    ChannelAccount(
        "wechat_substation",
        "wechat",
        "substation",
        "1487654321",
        "wx2f9e8d7c6b5a4f31",
        100,
        "wechat_legacy",
        ("fz", "_sub"),
    ),
)


def account(key: str) -> ChannelAccount:
    for acc in CHANNEL_ACCOUNTS:
        if acc.key == key:
            return acc
    raise KeyError(key)


@dataclasses.dataclass(frozen=True)
class SimConfig:
    seed: int = 42
    start: dt.date = dt.date(2026, 10, 1)
    days: int = 7
    orders_per_day: int = 2000
    skus: int = 300
    mess: MessProfileName = "realistic"
    #: share of orders placed in the main shop (the rest in the substation)
    main_shop_share: float = 0.75

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.orders_per_day < 1:
            raise ValueError("orders-per-day must be at least 1")
        if self.skus < 20:
            raise ValueError("skus must be at least 20 (the catalogue needs every category)")

    @property
    def profile(self) -> MessProfile:
        return MessProfile.named(self.mess)

    @property
    def start_epoch(self) -> int:
        """UTC epoch second of 00:00 Asia/Shanghai on the first business day."""
        midnight = dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)
        return int(midnight.timestamp()) - CST_OFFSET_S

    @property
    def end_epoch(self) -> int:
        """The moment the sources are a snapshot of: the end of the last business day."""
        return self.start_epoch + self.days * 86400

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def rng(self, name: str) -> np.random.Generator:
        """An independent random stream for one named component."""
        digest = hashlib.sha256(name.encode()).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *words])))
