"""The signer's page (``/sign/<token>/``) and the public verification page (``/verify/``), included at the
root by ``scell/urls.py`` under the ``signatures`` namespace."""

from __future__ import annotations

from django.urls import path

from signatures import views

urlpatterns = [
    path("sign/<str:token>/", views.sign_page, name="sign"),
    path("sign/<str:token>/code", views.send_code, name="code"),
    path("sign/<str:token>/sign", views.sign, name="do-sign"),
    path("sign/<str:token>/decline", views.decline, name="decline"),
    path("sign/<str:token>/pages/<int:number>.png", views.page_image, name="page"),
    path("sign/<str:token>/document.pdf", views.original_document, name="document"),
    path("sign/<str:token>/signed.pdf", views.signed_document, name="signed"),
    path("verify/", views.verify, name="verify"),
]
