"""The shop databases' table definitions, as the shops' own installers create them.

The main shop is dujiaoka 2.x (独角数卡), from its ``database/sql/install.sql``; the substation is
acg-faka (异次元发卡), from its ``kernel/Install/Install.sql``. Every column of the tables the
simulator fills is here with its type, ``NOT NULL`` and default as the installer has them, so a
row the simulator writes is a row a real shop could hold, on MySQL/MariaDB in strict mode too:

- the installers declare some ``NOT NULL`` columns without a default (dujiaoka ``goods.gd_description``,
  ``pays.merchant_pem``; acg-faka ``create_time`` everywhere, ``user.password``), so every row
  names them;
- dujiaoka keeps Laravel's ``timestamp NULL`` columns; acg-faka keeps ``datetime`` (naive
  Asia/Shanghai wall-clock time). Older acg-faka versions kept unix seconds in integers: the
  contracts read both (``schemas/README.md``);
- acg-faka's installer prefixes every table (``__PREFIX__order``, replaced by the prefix typed at
  install, ``acg_`` by default): the simulator writes ``acg_order`` and the like, and the
  platform reads them with ``?table_prefix=acg_`` on the database URL;
- the table-level character sets are ``utf8mb4`` here (some dujiaoka tables are ``utf8mb3`` with
  ``utf8mb4`` columns; utf8mb4 holds everything they hold).

One SQLAlchemy ``MetaData`` per shop gives both dialects' DDL: MySQL/MariaDB types as the
installer writes them, and their SQLite translation (``TINYINT`` → ``SMALLINT``, ``DECIMAL`` →
``NUMERIC``, ``DATETIME`` and ``TIMESTAMP`` kept by name, which SQLite stores as text). Besides
the installers' tables, the main shop holds ``refunds``, which this platform adds (dujiaoka has no
refund table; refunds are handled by hand in the payment channel's back office).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: acg-faka's installer default (``config/database.php``: ``'prefix' => 'acg_'``)
SUBSTATION_PREFIX = "acg_"
_MYSQL = ("mysql", "mariadb")


def split_table_prefix(url: str, default: str) -> tuple[sa.URL, str]:
    """A server URL without the platform's ``?table_prefix=`` (no driver knows it) and the prefix
    it names, ``default`` without one."""
    parsed = sa.make_url(url)
    prefix = str(parsed.query.get("table_prefix", default))
    return parsed.difference_update_query(["table_prefix"]), prefix


def _variant(generic: sa.types.TypeEngine, specific: sa.types.TypeEngine) -> sa.types.TypeEngine:
    return generic.with_variant(specific, *_MYSQL)


def _int(unsigned: bool = False) -> sa.types.TypeEngine:
    return _variant(sa.Integer(), mysql.INTEGER(unsigned=unsigned))


def _bigint_id() -> sa.types.TypeEngine:
    # SQLite: an INTEGER primary key is the rowid (a BIGINT one would not number itself)
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tinyint(unsigned: bool = False) -> sa.types.TypeEngine:
    width = None if unsigned else 1  # dujiaoka writes tinyint(1), acg-faka tinyint UNSIGNED
    return _variant(sa.SmallInteger(), mysql.TINYINT(width, unsigned=unsigned))


def _smallint_unsigned() -> sa.types.TypeEngine:
    return _variant(sa.SmallInteger(), mysql.SMALLINT(unsigned=True))


def _decimal(precision: int = 10, scale: int = 2, unsigned: bool = False) -> sa.types.TypeEngine:
    return _variant(
        sa.Numeric(precision, scale, asdecimal=False),
        mysql.DECIMAL(precision, scale, unsigned=unsigned, asdecimal=False),
    )


def _float_unsigned() -> sa.types.TypeEngine:
    return _variant(sa.Float(), mysql.FLOAT(10, 2, unsigned=True))


def _longtext() -> sa.types.TypeEngine:
    return _variant(sa.Text(), mysql.LONGTEXT())


def _col(
    name: str,
    type_: sa.types.TypeEngine,
    *,
    null: bool = True,
    default: str | None = None,
    comment: str | None = None,
    primary: bool = False,
) -> sa.Column:
    """One column; ``null=False`` without ``default`` is a column every insert must name."""
    return sa.Column(
        name,
        type_,
        primary_key=primary,
        nullable=null and not primary,
        server_default=default,
        comment=comment,
    )


def _laravel_timestamps() -> list[sa.Column]:
    return [_col(c, sa.TIMESTAMP()) for c in ("created_at", "updated_at", "deleted_at")]


_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def main_shop_metadata(prefix: str = "") -> sa.MetaData:
    """dujiaoka 2.x tables (with Laravel's ``DB_PREFIX``, none by default); timestamps are naive
    Asia/Shanghai (Laravel)."""
    m = sa.MetaData()
    sa.Table(
        prefix + "goods_group",
        m,
        _col("id", _int(), primary=True),
        _col("gp_name", sa.String(200), null=False, comment="分类名称"),
        _col("is_open", _tinyint(), null=False, default="1", comment="是否启用，1是 0否"),
        _col("ord", _int(), null=False, default="1", comment="排序权重 越大越靠前"),
        *_laravel_timestamps(),
        comment="商品分类表",
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "goods",
        m,
        _col("id", _int(), primary=True),
        _col("group_id", _int(), null=False, comment="所属分类id"),
        _col("gd_name", sa.String(200), null=False, comment="商品名称"),
        _col("gd_description", sa.String(200), null=False, comment="商品描述"),
        _col("gd_keywords", sa.String(200), null=False, comment="商品关键字"),
        _col("picture", sa.Text(), comment="商品图片"),
        _col("retail_price", _decimal(), default="0.00", comment="零售价"),
        _col("actual_price", _decimal(), null=False, default="0.00", comment="实际售价"),
        _col("in_stock", _int(), null=False, default="0", comment="库存"),
        _col("sales_volume", _int(), default="0", comment="销量"),
        _col("ord", _int(), default="1", comment="排序权重 越大越靠前"),
        _col("buy_limit_num", _int(), null=False, default="0", comment="限制单次购买最大数量"),
        _col("buy_prompt", sa.Text(), comment="购买提示"),
        _col("description", sa.Text(), comment="商品描述"),
        _col("type", _tinyint(), null=False, default="1", comment="商品类型 1自动发货 2人工处理"),
        _col("wholesale_price_cnf", sa.Text(), comment="批发价配置"),
        _col("other_ipu_cnf", sa.Text(), comment="其他输入框配置"),
        _col("api_hook", sa.Text(), comment="回调事件"),
        _col("is_open", _tinyint(), null=False, default="1", comment="是否启用，1是 0否"),
        *_laravel_timestamps(),
        comment="商品表",
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "carmis",
        m,
        _col("id", _bigint_id(), primary=True),
        _col("goods_id", _int(), null=False, comment="所属商品"),
        _col("status", _tinyint(), null=False, default="1", comment="状态 1未售出 2已售出"),
        _col("is_loop", _tinyint(), null=False, default="0", comment="循环卡密 1是 0否"),
        _col("carmi", sa.Text(), null=False, comment="卡密"),
        *_laravel_timestamps(),
        # the installer's name is idx_goods_id, as on orders: SQLite names indexes per database
        sa.Index("idx_carmis_goods_id", "goods_id"),
        comment="卡密表",
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "coupons",
        m,
        _col("id", _int(), primary=True),
        _col("discount", _decimal(), null=False, default="0.00", comment="优惠金额"),
        _col("is_use", _tinyint(), null=False, default="1", comment="是否已经使用 1未使用 2已使用"),
        _col("is_open", _tinyint(), null=False, default="1", comment="是否启用 1是 0否"),
        _col("coupon", sa.String(150), null=False, comment="优惠码"),
        _col("ret", _int(), null=False, default="0", comment="剩余使用次数"),
        *_laravel_timestamps(),
        sa.Index("idx_coupon", "coupon", unique=True),
        comment="优惠码表",
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "pays",
        m,
        _col("id", _int(), primary=True),
        _col("pay_name", sa.String(200), null=False, comment="支付名称"),
        _col("pay_check", sa.String(50), null=False, comment="支付标识"),
        _col("pay_method", _tinyint(), null=False, comment="支付方式 1跳转 2扫码"),
        _col("pay_client", _tinyint(), null=False, default="1", comment="支付场景"),
        _col("merchant_id", sa.String(200), comment="商户 ID"),
        _col("merchant_key", sa.Text(), comment="商户 KEY"),
        _col("merchant_pem", sa.Text(), null=False, comment="商户密钥"),
        _col("pay_handleroute", sa.String(200), null=False, comment="支付处理路由"),
        _col("is_open", _tinyint(), null=False, default="1", comment="是否启用 1是 0否"),
        *_laravel_timestamps(),
        sa.Index("idx_pay_check", "pay_check", unique=True),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "orders",
        m,
        _col("id", _bigint_id(), primary=True),
        _col("order_sn", sa.String(150), null=False, comment="订单号"),
        _col("goods_id", _int(), null=False, comment="关联商品id"),
        _col("coupon_id", _int(), default="0", comment="关联优惠码id"),
        _col("title", sa.String(200), null=False, comment="订单名称"),
        _col("type", _tinyint(), null=False, default="1", comment="1自动发货 2人工处理"),
        _col("goods_price", _decimal(), null=False, default="0.00", comment="商品单价"),
        _col("buy_amount", _int(), null=False, default="1", comment="购买数量"),
        _col("coupon_discount_price", _decimal(), null=False, default="0.00"),
        _col("wholesale_discount_price", _decimal(), null=False, default="0.00"),
        _col("total_price", _decimal(), null=False, default="0.00", comment="订单总价"),
        _col("actual_price", _decimal(), null=False, default="0.00", comment="实际支付价格"),
        _col("search_pwd", sa.String(200), default="", comment="查询密码"),
        _col("email", sa.String(200), null=False, comment="下单邮箱"),
        _col("info", sa.Text(), comment="订单详情"),
        _col("pay_id", _int(), comment="支付通道id"),
        _col("buy_ip", sa.String(50), null=False, comment="购买者下单IP地址"),
        _col("trade_no", sa.String(200), default="", comment="第三方支付订单号"),
        _col(
            "status",
            _tinyint(),
            null=False,
            default="1",
            comment="1待支付 2待处理 3处理中 4已完成 5处理失败 6异常 -1过期",
        ),
        _col("coupon_ret_back", _tinyint(), null=False, default="0"),
        *_laravel_timestamps(),
        sa.Index("idx_order_sn", "order_sn", unique=True),
        sa.Index("idx_goods_id", "goods_id"),
        sa.Index("idex_email", "email"),
        # not the installer's: the platform reads orders by their version, daily and live
        sa.Index("idx_orders_updated_at", "updated_at"),
        comment="订单表",
        **_TABLE_OPTIONS,
    )
    sa.Table(
        prefix + "refunds",
        m,
        _col("id", _int(), primary=True),
        _col("refund_no", sa.String(32), null=False),
        _col("order_sn", sa.String(150), null=False),
        _col("amount", _decimal(), null=False),
        _col("reason", sa.String(100), null=False),
        _col("status", _tinyint(), null=False, comment="0处理中 1成功 2失败"),
        _col("created_at", sa.TIMESTAMP()),
        _col("succeeded_at", sa.TIMESTAMP()),
        sa.Index("idx_refund_no", "refund_no", unique=True),
        sa.Index("idx_refunds_order_sn", "order_sn"),
        comment="退款表 (cardlake)",
        **_TABLE_OPTIONS,
    )
    return m


def substation_metadata(prefix: str = SUBSTATION_PREFIX) -> sa.MetaData:
    """acg-faka tables, named with the install's ``prefix``; times are naive Asia/Shanghai."""
    m = sa.MetaData()
    u_int, u_tiny, u_money = _int(True), _tinyint(True), _decimal(unsigned=True)

    def table(name: str, *items: sa.SchemaItem) -> sa.Table:
        return sa.Table(prefix + name, m, *items, **_TABLE_OPTIONS)

    def index(name: str, *columns: str, unique: bool = False) -> sa.Index:
        # MySQL index names are per table, SQLite's per database: prefix them with the table
        return sa.Index(f"{prefix}{name}", *columns, unique=unique)

    table(
        "user",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("username", sa.String(32), null=False, comment="会员名"),
        _col("email", sa.String(128), comment="邮箱"),
        _col("phone", sa.String(16), comment="手机"),
        _col("qq", sa.String(16), comment="QQ号"),
        _col("password", sa.String(64), null=False, comment="登录密码"),
        _col("salt", sa.String(32), null=False, comment="盐"),
        _col("app_key", sa.String(32), null=False, comment="对接密钥"),
        _col("avatar", sa.String(255), comment="头像"),
        _col("balance", _decimal(14, 2, True), null=False, default="0.00", comment="余额"),
        _col("coin", _decimal(14, 2, True), null=False, default="0.00", comment="硬币"),
        _col("integral", u_int, null=False, default="0", comment="积分"),
        _col("create_time", sa.DateTime(), null=False, comment="注册时间"),
        _col("login_time", sa.DateTime(), comment="登录时间"),
        _col("last_login_time", sa.DateTime(), comment="上一次登录时间"),
        _col("login_ip", sa.String(128), comment="登录IP"),
        _col("last_login_ip", sa.String(128), comment="上一次登录IP"),
        _col("pid", u_int, default="0", comment="上级ID"),
        _col("recharge", _decimal(14, 2, True), null=False, default="0.00", comment="累计充值"),
        _col("total_coin", _decimal(14, 2, True), null=False, default="0.00"),
        _col("status", u_tiny, null=False, default="0", comment="状态：0=封禁，1=正常"),
        _col("business_level", u_int, comment="商户等级id"),
        _col("nicename", sa.String(10), comment="真实姓名"),
        _col("alipay", sa.String(64), comment="支付宝账号"),
        _col("wechat", sa.String(255), comment="微信收款二维码"),
        _col("settlement", u_tiny, null=False, default="0", comment="自动结算：0=支付宝，1=微信"),
        index("user_username", "username", unique=True),
        index("user_email", "email", unique=True),
        index("user_phone", "phone", unique=True),
    )
    table(
        "category",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("name", sa.String(255), null=False, comment="商品分类名称"),
        _col("sort", _smallint_unsigned(), null=False, default="0", comment="排序"),
        _col("create_time", sa.DateTime(), null=False, comment="创建时间"),
        _col("owner", u_int, null=False, default="0", comment="所属会员：0=系统"),
        _col("icon", sa.String(255), comment="分类图标"),
        _col("status", u_tiny, null=False, default="0", comment="状态：0=停用，1=启用"),
        _col("hide", u_tiny, null=False, default="0", comment="隐藏：1=隐藏，0=不隐藏"),
        _col("user_level_config", sa.Text(), comment="会员配置"),
    )
    flags = (
        ("api_status", "API对接：0=关闭，1=启用"),
        ("delivery_way", "发货方式：0=自动发货，1=手动发货/插件发货"),
        ("delivery_auto_mode", "自动发卡模式：0=旧卡先发，1=随机发卡，2=新卡先发"),
    )
    table(
        "commodity",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("category_id", u_int, null=False, comment="商品分类ID"),
        _col("name", sa.String(255), null=False, comment="商品名称"),
        _col("description", sa.Text(), comment="商品说明"),
        _col("cover", sa.String(255), comment="商品封面图片"),
        _col("factory_price", u_money, null=False, default="0.00", comment="成本单价"),
        _col("price", u_money, null=False, default="0.00", comment="商品单价(未登录)"),
        _col("user_price", u_money, null=False, default="0.00", comment="商品单价(会员价)"),
        _col("status", u_tiny, null=False, default="0", comment="状态：0=下架，1=上架"),
        _col("owner", u_int, null=False, default="0", comment="所属会员：0=系统"),
        _col("create_time", sa.DateTime(), null=False, comment="创建时间"),
        _col(flags[0][0], u_tiny, null=False, default="0", comment=flags[0][1]),
        _col("code", sa.String(64), null=False, comment="商品代码(API对接)"),
        *(_col(n, u_tiny, null=False, default="0", comment=c) for n, c in flags[1:]),
        _col("delivery_message", sa.String(255), comment="手动发货显示信息"),
        _col("contact_type", u_tiny, null=False, default="0", comment="联系方式：0=任意"),
        _col("password_status", u_tiny, null=False, default="0", comment="订单密码"),
        _col("sort", _smallint_unsigned(), null=False, default="0", comment="排序"),
        _col("coupon", u_tiny, null=False, default="0", comment="优惠卷：0=关闭，1=启用"),
        _col("shared_id", u_int, comment="共享平台ID"),
        _col("shared_code", sa.String(64), comment="共享平台-商品代码"),
        _col("shared_premium", _float_unsigned(), default="0.00", comment="商品加价"),
        _col("shared_premium_type", u_tiny, default="0", comment="加价模式"),
        _col("seckill_status", u_tiny, null=False, default="0", comment="商品秒杀"),
        _col("seckill_start_time", sa.DateTime(), comment="秒杀开始时间"),
        _col("seckill_end_time", sa.DateTime(), comment="秒杀结束时间"),
        _col("draft_status", u_tiny, null=False, default="0", comment="指定卡密购买"),
        _col("draft_premium", u_money, default="0.00", comment="指定卡密购买时溢价"),
        _col("inventory_hidden", u_tiny, null=False, default="0", comment="隐藏库存"),
        _col("leave_message", sa.String(255), comment="发货留言"),
        _col("recommend", u_tiny, default="0", comment="推荐商品：0=否，1=是"),
        _col("send_email", u_tiny, null=False, default="0", comment="发送邮件：0=否，1=是"),
        _col("only_user", u_tiny, null=False, default="0", comment="限制登录购买"),
        _col("purchase_count", u_int, null=False, default="0", comment="限制购买数量"),
        _col("widget", sa.Text(), comment="控件"),
        _col("level_price", sa.Text(), comment="会员等级-定制价格"),
        _col("level_disable", u_tiny, null=False, default="0", comment="禁用会员等级折扣"),
        _col("minimum", u_int, null=False, default="0", comment="最低购买数量，0=无限制"),
        _col("maximum", u_int, null=False, default="0", comment="最大购买数量，0=无限制"),
        _col("shared_sync", u_tiny, null=False, default="0", comment="同步平台价格"),
        _col("config", sa.Text(), comment="配置文件"),
        _col("hide", u_tiny, null=False, default="0", comment="隐藏：1=隐藏，0=不隐藏"),
        _col("inventory_sync", _tinyint(), null=False, default="0", comment="同步库存数量"),
        index("commodity_code", "code", unique=True),
        index("commodity_category_id", "category_id"),
    )
    table(
        "card",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("owner", u_int, null=False, default="0", comment="所属会员：0=系统"),
        _col("commodity_id", u_int, null=False, comment="商品id"),
        _col("draft", sa.String(255), comment="预选信息"),
        _col("secret", sa.String(760), null=False, comment="卡密信息"),
        _col("create_time", sa.DateTime(), null=False, comment="添加时间"),
        _col("purchase_time", sa.DateTime(), comment="购买时间"),
        _col("order_id", u_int, comment="订单id"),
        _col(
            "status", u_tiny, null=False, default="0", comment="状态：0=未出售，1=已出售，2=已锁定"
        ),
        _col("note", sa.String(64), comment="备注信息"),
        _col("race", sa.String(32), comment="商品种类"),
        index("card_commodity_id", "commodity_id"),
        index("card_order_id", "order_id"),
        index("card_status", "status"),
    )
    table(
        "order",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("owner", u_int, null=False, default="0", comment="所属会员：0=游客，其他等于会员UID"),
        _col("user_id", u_int, null=False, default="0", comment="商户ID：0=系统"),
        _col("trade_no", sa.CHAR(19), null=False, comment="订单号"),
        _col("amount", u_money, null=False, comment="订单金额"),
        _col("commodity_id", u_int, null=False, comment="商品id"),
        _col("card_id", u_int, comment="预选卡密id"),
        _col("card_num", u_int, null=False, default="0", comment="卡密数量"),
        _col("pay_id", u_int, null=False, comment="支付方式id"),
        _col("create_time", sa.DateTime(), null=False, comment="下单时间"),
        _col("create_ip", sa.String(64), null=False, comment="下单IP"),
        _col("create_device", u_tiny, null=False, comment="下单设备：0=电脑,1=安卓,2=IOS,3=IPAD"),
        _col("pay_time", sa.DateTime(), comment="支付时间"),
        _col("status", u_tiny, null=False, default="0", comment="订单状态：0=未支付，1=已支付"),
        _col("secret", _longtext(), comment="卡密信息"),
        _col("password", sa.String(32), comment="查询密码"),
        _col("contact", sa.String(32), comment="联系方式"),
        _col(
            "delivery_status",
            u_tiny,
            null=False,
            default="0",
            comment="发货状态：0=未发货，1=已发货",
        ),
        _col("pay_url", sa.String(1024)),
        _col("coupon_id", u_int, comment="优惠卷id"),
        _col("cost", u_money, null=False, default="0.00", comment="手续费"),
        _col("from", u_int, comment="推广人id"),
        _col("premium", u_money, default="0.00", comment="加价"),
        _col("widget", sa.Text(), comment="控件内容"),
        _col("rent", u_money, null=False, default="0.00", comment="成本价"),
        _col("race", sa.String(32), comment="商品种类"),
        _col("rebate", u_money, default="0.00", comment="返利金额"),
        _col("pay_cost", u_money, default="0.00", comment="支付接口手续费"),
        _col("request_no", sa.CHAR(19), comment="请求id"),
        index("order_trade_no", "trade_no", unique=True),
        index("order_request_no", "request_no", unique=True),
        index("order_commodity_id", "commodity_id"),
        index("order_contact", "contact"),
        index("order_create_time", "create_time"),
    )
    table(
        "pay",
        _col("id", u_int, primary=True, comment="主键id"),
        _col("name", sa.String(16), null=False, comment="支付名称"),
        _col("icon", sa.String(255), comment="图标"),
        _col("code", sa.String(32), null=False, comment="支付代码"),
        _col("commodity", u_tiny, null=False, default="0", comment="前台状态：0=停用，1=启用"),
        _col("recharge", u_tiny, null=False, default="0", comment="充值状态：0=停用，1=启用"),
        _col("create_time", sa.DateTime(), null=False, comment="添加时间"),
        _col("handle", sa.String(64), null=False, comment="支付平台"),
        _col("sort", _smallint_unsigned(), null=False, default="0", comment="排序"),
        _col("equipment", u_tiny, null=False, default="0", comment="设备：0=通用，1=手机，2=电脑"),
        _col("cost", _decimal(10, 3, True), default="0.000", comment="手续费"),
        _col("cost_type", u_tiny, default="0", comment="手续费模式：0=单笔固定，1=百分比"),
    )
    return m
