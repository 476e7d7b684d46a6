-- Rule `duplicate_payment`, its daily signal: per channel account and statement day, the further
-- charges of an order the channel had already been paid for (rpt_channel_reconciliation,
-- `duplicate_in_channel` / `charged_again`): money to pay back. Every statement the
-- reconciliation checked is listed, with no duplicate charge or with some.
{{ reconciliation_exception_signal('duplicate_payment', 'charged_again', 'duplicate_charges') }}
