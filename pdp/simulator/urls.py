"""Routes of the PDP simulator, mounted at /pdp-sim/ (namespace ``pdp_simulator``).

``flow-service/v1/...`` is the standard's API (base URL ".../pdp-sim/flow-service"), ``auth/token`` its
OAuth2 token endpoint, ``_control/...`` the simulator's own operations for tests and the sandbox.
"""

from django.urls import path

from pdp.simulator import views

urlpatterns = [
    path("flow-service/v1/healthcheck", views.healthcheck, name="healthcheck"),
    path("flow-service/v1/flows", views.flows, name="flows"),
    path("flow-service/v1/flows/search", views.flows_search, name="flows-search"),
    path("flow-service/v1/flows/<str:flow_id>", views.flow_detail, name="flow"),
    path("flow-service/v1/webhooks", views.webhooks, name="webhooks"),
    path("flow-service/v1/webhooks/<str:webhook_id>", views.webhook_detail, name="webhook"),
    path("auth/token", views.token, name="token"),
    path("_control/flows/<str:flow_id>/statuses", views.control_status, name="control-status"),
    path("_control/inbound", views.control_inbound, name="control-inbound"),
    path("_control/faults", views.control_faults, name="control-faults"),
]
