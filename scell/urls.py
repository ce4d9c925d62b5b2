from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from billing import views as billing_views
from scell import account, dashboard, developers, i18n, observability

handler404 = "scell.errors.json_404"
handler500 = "scell.errors.json_500"

admin.site.site_header = "Scell support"
admin.site.site_title = "Scell support"

urlpatterns = [
    path("", include((observability.urlpatterns, "health"), namespace="health")),
    path("api/v1/", include("scell.api.urls")),
    path("admin/", admin.site.urls),
    path("", include((dashboard.urlpatterns, "dashboard"), namespace="dashboard")),
    path("", include((i18n.urlpatterns, "i18n"), namespace="i18n")),
    path("", include((account.urlpatterns, "account"), namespace="account")),
    path("", include((developers.urlpatterns, "developers"), namespace="developers")),
    path("", include((billing_views.urlpatterns, "billing"), namespace="billing")),
    path("", include(("archive.views", "archive"), namespace="archive")),
    path("", include(("webhooks.views", "webhooks"), namespace="webhooks")),
    path("", include(("signatures.urls", "signatures"), namespace="signatures")),
    path("", include(("signatures.dashboard", "signatures_dashboard"), namespace="signatures_dashboard")),
    path("", include(("invoicing.urls", "invoicing_dashboard"), namespace="invoicing_dashboard")),
    path("pdp/", include(("pdp.urls", "pdp"), namespace="pdp")),
]
if settings.PDP_SIMULATOR_ENABLED:
    # The sandbox's PDP: the standard XP Z12-013 Flow Service, simulated (pdp/simulator).
    urlpatterns.append(
        path("pdp-sim/", include(("pdp.simulator.urls", "pdp_simulator"), namespace="pdp_simulator"))
    )
