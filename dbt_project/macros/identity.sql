{#- Identity normalisation rules: how a typed phone, e-mail, QQ number or free-text contact
    becomes one canonical identifier node (`phone:13800138000`, `email:abc@qq.com`, `qq:12345`).
    Every macro returns null for a value that is not a usable identifier of its kind, so that
    garbage never links two people. Tested by the unit_tests of `int_identifiers_observed`. -#}

{#- Full-width digits, letters, '@', '+', '-', '.' and the ideographic space, as people type
    them on a Chinese keyboard, folded to ASCII before any rule looks at the text. -#}
{% macro identity_ascii(text) -%}
    case
        -- plain ASCII (as many bytes as characters) has nothing to fold: skip the costly translate
        when strlen({{ text }}) = length({{ text }}) then {{ text }}
        else translate(
            {{ text }},
            '０１２３４５６７８９＠＋－．　ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ',
            '0123456789@+-. ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
        )
    end
{%- endmacro %}

{#- A mainland mobile number in any typed form → its 11 digits, else null.
    `13800138000`, `138 0013 8000`, `+86-138-0013-8000`, `86 13800138000`, `0086…` all give
    `13800138000`: keep the digits, drop a leading 0086/86 country code, then require
    1[3-9] + 9 digits. Only text made of digits, spaces, '+', '-', '(', ')' and '.' qualifies
    (an e-mail or a name never turns into a phone). -#}
{% macro normalize_phone(text) -%}
    case
        when regexp_full_match(trim({{ identity_ascii(text) }}), '[0-9 +()\-.]{11,20}')
            then nullif(
                regexp_extract(
                    regexp_replace({{ identity_ascii(text) }}, '[^0-9]', '', 'g'),
                    '^(?:0086|86)?(1[3-9][0-9]{9})$',
                    1
                ),
                ''
            )
    end
{%- endmacro %}

{#- An e-mail address → trimmed and lower-cased, else null when it is not `local@domain.tld`.
    Mailbox providers treat the address case-insensitively, so case variants are one person. -#}
{% macro normalize_email(text) -%}
    case
        when regexp_full_match(
            lower(trim({{ identity_ascii(text) }})),
            '[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)+'
        )
            then lower(trim({{ identity_ascii(text) }}))
    end
{%- endmacro %}

{#- A QQ number → its digits (5 to 11, no leading zero: QQ's own number space), else null. -#}
{% macro normalize_qq(text) -%}
    case
        when regexp_full_match(trim({{ identity_ascii(text) }}), '[1-9][0-9]{4,10}')
            then trim({{ identity_ascii(text) }})
    end
{%- endmacro %}

{#- The QQ number behind a QQ mailbox (`12345@qq.com` is QQ 12345; foxmail and vip.qq.com
    mailboxes are not numbered that way and stay e-mails only), else null. Takes a normalised
    e-mail. -#}
{% macro qq_of_mailbox(email) -%}
    nullif(regexp_extract({{ email }}, '^([1-9][0-9]{4,10})@qq\.com$', 1), '')
{%- endmacro %}

{#- What a free-text buyer contact is: 'email' (has an '@'), 'phone' (a mobile number in any
    typed form), 'qq' (5–11 plain digits that are not a mobile number), else 'unknown'.
    An 11-digit `1[3-9]…` string is read as a phone: QQ numbers that long are rare and a
    phone is what a shop's contact box asks for first. -#}
{% macro classify_contact(text) -%}
    {{ contact_kind(normalize_email(text), normalize_phone(text), normalize_qq(text)) }}
{%- endmacro %}

{#- `classify_contact` from a contact's three normalised readings (e-mail, phone, QQ), for a model
    that reads each once. -#}
{% macro contact_kind(email, phone, qq) -%}
    case
        when {{ email }} is not null then 'email'
        when {{ phone }} is not null then 'phone'
        when {{ qq }} is not null then 'qq'
        else 'unknown'
    end
{%- endmacro %}

{#- The normalised value of a free-text contact, for the kind `classify_contact` gives. -#}
{% macro normalize_contact(text) -%}
    coalesce({{ normalize_email(text) }}, {{ normalize_phone(text) }}, {{ normalize_qq(text) }})
{%- endmacro %}

{#- A node of the identity graph: `<kind>:<normalised value>`; null when the value is null. -#}
{% macro identity_node(kind, value) -%}
    ({{ kind }} || ':' || {{ value }})
{%- endmacro %}

{#- The stable user key of a component, from the node that names it (its earliest-seen node):
    'U' + the first 12 hex digits of md5(node). Same node → same key, in every rebuild. -#}
{% macro user_key_of(node) -%}
    ('U' || left(md5({{ node }}), 12))
{%- endmacro %}

{#- How Alipay prints a buyer account in its statements (对方账户): a phone as its first 3 and
    last 4 digits (`138****8000`), an e-mail as the first 3 characters of its local part and its
    domain (`abc***@qq.com`). Applied to a normalised phone or e-mail, it gives the mask that
    account would show, so a masked statement line can be compared with known identifiers. -#}
{% macro alipay_mask(kind, value) -%}
    case {{ kind }}
        when 'phone' then left({{ value }}, 3) || '****' || right({{ value }}, 4)
        when 'email' then left({{ value }}, 3) || '***@' || split_part({{ value }}, '@', 2)
    end
{%- endmacro %}

{#- A contact shown to customer service: every character but the last 4 replaced by '*' (for an
    e-mail, of its local part; the domain stays). -#}
{% macro mask_contact(kind, value) -%}
    case
        when {{ kind }} = 'email'
            then repeat('*', greatest(length(split_part({{ value }}, '@', 1)) - 4, 0))
            || right(split_part({{ value }}, '@', 1), 4)
            || '@'
            || split_part({{ value }}, '@', 2)
        else repeat('*', greatest(length({{ value }}) - 4, 0)) || right({{ value }}, 4)
    end
{%- endmacro %}

{#- The identity record of an order: `main_order:<id>` or `sub_order:<id>`. -#}
{% macro order_record_key(shop, order_id) -%}
    case {{ shop }} when 'main' then 'main_order:' else 'sub_order:' end || {{ order_id }}
{%- endmacro %}

{#- A substation account's identifier fields, one row per field that has a value: the record
    (`sub_user:<id>`), `source_ref`, `seen_at`, `id_kind` and `raw_value`. The account's own
    columns are computed once, before the fields become rows. -#}
{% macro substation_user_fields() -%}
    unpivot (
        select
            'sub_user:' || user_id as record_key,
            cast(user_id as varchar) as source_ref,
            created_at as seen_at,
            cast(user_id as varchar) as user_id,
            email,
            phone,
            qq
        from {{ ref('stg_substation__users') }}
    )
    on user_id, email, phone, qq
    into name id_kind value raw_value
{%- endmacro %}

{#- A CRM member's identifier fields over all its versions, one row per version and field that
    has a value: the record (`crm:<member_id>`), `source_ref` (the member @ the version's first
    snapshot), `seen_at`, `id_kind` and `raw_value`. -#}
{% macro crm_member_fields() -%}
    unpivot (
        select
            'crm:' || member_id as record_key,
            member_id || '@' || strftime(first_snapshot_date, '%Y-%m-%d') as source_ref,
            registered_at as seen_at,
            member_id,
            phone,
            email,
            qq,
            wechat_openid
        from {{ ref('stg_crm__member_versions') }}
        where member_id is not null and member_id <> ''
    )
    on member_id, phone, email, qq, wechat_openid
    into name id_kind value raw_value
{%- endmacro %}
