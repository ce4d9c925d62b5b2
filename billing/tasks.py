"""Background work of billing: daily expiry of lots, Scell's own invoice for each pack sold."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from billing import services
from billing.models import Purchase


@cron("10 0 * * *")  # every day at 00:10 (settings TIME_ZONE)
@dramatiq.actor(queue_name="billing", max_retries=3)
def expire_credit_lots() -> None:
    """Write off the remainder of lots past their 12 months."""
    services.credits_expire()


@dramatiq.actor(queue_name="billing", max_retries=10, min_backoff=5_000)
def invoice_pack_purchase(purchase_id: str) -> None:
    purchase = Purchase.objects.filter(pk=purchase_id).first()
    if purchase is not None:
        services.purchase_invoice(purchase=purchase)
