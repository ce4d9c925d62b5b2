from django.urls import path

from pdp import views

urlpatterns = [
    path("webhooks/<uuid:mailbox_id>", views.webhook, name="webhook"),
]
