from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api import views

router = SimpleRouter(trailing_slash=False)
router.register("credits/ledger", views.LedgerViewSet, basename="credit-ledger")
router.register("credits/purchases", views.PurchaseViewSet, basename="credit-purchase")

urlpatterns = [
    path("credits", views.CreditsView.as_view(), name="credits"),
    path("credits/usage", views.CreditUsageView.as_view(), name="credit-usage"),
    path("billing/webhooks/stripe", views.StripeWebhookView.as_view(), name="stripe-webhook"),
    *router.urls,
]
