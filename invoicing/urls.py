"""Dashboard URLs of invoices (``/invoices/``), mounted in ``scell/urls.py`` as ``invoicing_dashboard``."""

from django.urls import path

from invoicing import views

urlpatterns = [
    path("invoices/", views.list_view, name="list"),
    path("invoices/simulate-incoming/", views.simulate_incoming_view, name="simulate-incoming"),
    path("invoices/<uuid:pk>/", views.detail_view, name="detail"),
    path("invoices/<uuid:pk>/<slug:action>/", views.action_view, name="action"),
]
