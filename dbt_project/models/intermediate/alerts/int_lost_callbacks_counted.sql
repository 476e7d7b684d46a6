-- Rule `lost_callback`, its daily signal: per channel account and statement day, the payments the
-- channel statement shows for orders the shop still shows unpaid (rpt_channel_reconciliation,
-- `missing_in_shop` / `lost_callback`): the buyer paid and, until someone acts, got nothing.
-- Every statement the reconciliation checked is listed, with no lost callback or with some.
{{ reconciliation_exception_signal('lost_callback', 'lost_callback', 'lost_callbacks') }}
