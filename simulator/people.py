"""The buyers: one row per real person with every identifier they use somewhere.

A person has a phone, a QQ number, one or two e-mail addresses (often the QQ mailbox), a WeChat
openid and a nickname. The shops, the CRM and the channels each see only some of these, typed in
their own ways; ``_truth/identities.parquet`` maps every form back to ``person_id``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import DIGITS, LOWER, OPENID_CHARS, random_codes

_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
)
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建文辉力宇浩然子轩梓涵一诺欣怡")
_NICK_WORDS = [
    "小",
    "阿",
    "大",
    "老",
    "快乐",
    "孤独",
    "无敌",
    "可爱",
    "暴躁",
    "佛系",
    "咸鱼",
    "追风",
]
_NICK_TAILS = ["玩家", "少年", "猫", "鱼", "侠", "哥", "姐", "宝宝", "骑士", "法师", "同学", "Ace"]
_MAIL_DOMAINS = np.array(
    ["163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com"]
)
_PHONE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        155,
        156,
        157,
        158,
        159,
        166,
        170,
        173,
        176,
        177,
        178,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        195,
        198,
        199,
    ]
)


def person_count(cfg: SimConfig) -> int:
    """Size of the buyer population: grows with the horizon, so that repeat buying is plausible."""
    return max(200, int(cfg.orders_per_day * 0.45 * cfg.days**0.6))


def build_people(cfg: SimConfig) -> pl.DataFrame:
    rng = cfg.rng("people")
    n = person_count(cfg)
    pid = np.arange(1, n + 1, dtype=np.int64)
    # unique numbers by construction: a random injective map from the person index
    phone_body = (rng.permutation(n).astype(np.int64) * 7919 + rng.integers(0, 7919)) % 100_000_000
    # first phones and moved-to phones use disjoint prefixes, so no two people share a number
    half = len(_PHONE_PREFIXES) // 2
    phone = np.char.add(
        rng.choice(_PHONE_PREFIXES[:half], n).astype(str), np.char.zfill(phone_body.astype(str), 8)
    )
    qq = 100_000 + rng.permutation(n).astype(np.int64) * 3 + rng.integers(0, 3, n)
    qq = np.where(rng.uniform(size=n) < 0.6, qq + 1_000_000_000, qq + 200_000_000)
    qq_str = qq.astype(str)
    local = np.char.add(random_codes(rng, n, 5, LOWER), random_codes(rng, n, 3, DIGITS))
    local = np.char.add(local, np.char.mod("%x", pid))  # the hex id keeps it unique
    other_mail = np.char.add(np.char.add(local, "@"), rng.choice(_MAIL_DOMAINS, n))
    qq_mail = np.char.add(qq_str, "@qq.com")
    uses_qq_mail = rng.uniform(size=n) < 0.5
    email = np.where(uses_qq_mail, qq_mail, other_mail)
    # some people use a second address (the other of the two) now and then
    email_alt = np.where(
        rng.uniform(size=n) < 0.15, np.where(uses_qq_mail, other_mail, qq_mail), ""
    )
    openid = np.char.add("o", random_codes(rng, n, 27, OPENID_CHARS))
    nick = np.char.add(rng.choice(np.array(_NICK_WORDS), n), rng.choice(np.array(_NICK_TAILS), n))
    nick = np.char.add(nick, rng.integers(0, 1000, n).astype(str))
    real_name = np.char.add(rng.choice(np.array(_SURNAMES), n), rng.choice(np.array(_GIVEN), n))

    # buying frequency: heavy-tailed, so a few buy very often and most buy once or twice
    activity = rng.pareto(1.3, n) + 0.2
    # when they first show up: a third exist before the horizon, the rest join over it
    join_day = np.where(rng.uniform(size=n) < 0.35, 0, rng.integers(0, max(1, cfg.days), n)).astype(
        np.int64
    )
    return pl.DataFrame(
        {
            "person_id": pid,
            "phone": phone,
            "qq": qq_str,
            "email": email,
            "email_alt": email_alt,
            "wechat_openid": openid,
            "nickname": nick,
            "real_name": real_name,
            "activity": activity,
            "join_day": join_day,
            # a second phone they move to during the horizon (CRM contact change)
            "phone_new": np.char.add(
                rng.choice(_PHONE_PREFIXES[half:], n).astype(str),
                np.char.zfill(((phone_body + 50_000_000) % 100_000_000).astype(str), 8),
            ),
        }
    )
