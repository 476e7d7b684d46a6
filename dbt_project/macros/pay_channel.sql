{#- The payment channel behind a shop's payment-method code (dujiaoka `pays.pay_check`, acg-faka
    `pay.code`): the direct integrations and the 易支付 aggregator codes. -#}
{% macro pay_channel(code) -%}
    case
        when lower({{ code }}) in ('zfbf2f', 'alipay', 'aliweb', 'alipayscan') then 'alipay'
        when lower({{ code }}) in ('wescan', 'wxpay', 'wechat', 'wxscan') then 'wechat'
        else 'other'
    end
{%- endmacro %}
