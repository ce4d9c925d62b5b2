from rest_framework.routers import SimpleRouter

from webhooks.api import views

router = SimpleRouter(trailing_slash=False)
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("events", views.EventViewSet, basename="event")

urlpatterns = router.urls
