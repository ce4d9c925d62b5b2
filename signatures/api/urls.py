from rest_framework.routers import SimpleRouter

from signatures.api.views import SignatureRequestViewSet

router = SimpleRouter(trailing_slash=False)
router.register("signature-requests", SignatureRequestViewSet, basename="signature-request")

urlpatterns = router.urls
