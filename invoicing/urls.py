"""Dashboard URLs of invoices (``/invoices/``), mounted in ``scell/urls.py`` as ``invoicing_dashboard``."""

from django.urls import path

from invoicing import views

urlpatterns = [
    path("invoices/", views.list_view, name="list"),
    path("invoices/new/", views.create_view, name="new"),
    path("invoices/totals/", views.totals_view, name="totals"),
    path("invoices/simulate-incoming/", views.simulate_incoming_view, name="simulate-incoming"),
    path("invoices/<uuid:pk>/", views.detail_view, name="detail"),
    path("invoices/<uuid:pk>/edit/", views.edit_view, name="edit"),
    path("invoices/<uuid:pk>/totals/", views.totals_view, name="draft-totals"),
    path("invoices/<uuid:pk>/issue/", views.issue_view, name="issue"),
    path("invoices/<uuid:pk>/delete/", views.delete_view, name="delete"),
    path("invoices/<uuid:pk>/credit-note/", views.credit_note_view, name="credit-note"),
    path("invoices/<uuid:pk>/download/<slug:fmt>/", views.download_view, name="download"),
    # Lifecycle actions of issued and received invoices (views.ACTIONS).
    path("invoices/<uuid:pk>/<slug:action>/", views.action_view, name="action"),
]
