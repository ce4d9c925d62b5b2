from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from scell.api import views
from scell.errors import json_404

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("sub-tenants", views.SubTenantViewSet, basename="sub-tenant")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("me", views.MeView.as_view(), name="me"),
    path("", include(router.urls)),
    path("", include("invoicing.api.urls")),
    path("", include("billing.api.urls")),
    path("", include("archive.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("signatures.api.urls")),
    # Anything else under /api/v1/ is the error object, even with DEBUG on.
    # Unknown API URLs answer 404 with the error object, whatever the method: exempt from the CSRF check,
    # which would otherwise answer an unsafe method with Django's HTML 403 page.
    re_path(r"^.*$", csrf_exempt(json_404)),
]
