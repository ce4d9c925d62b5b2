"""A document is rendered once, however many processes ask for it at the same moment: just after an issue,
the documents actor, the PDP transmission and a download all want the Factur-X PDF."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from invoicing import services
from invoicing.formats import facturx
from invoicing.models import Invoice, RenderedDocument

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_renders_of_one_document_render_it_once(
    require_postgres, seller, draft_body, monkeypatch
) -> None:
    client = seller.client("sk_test")
    draft = client.post("/api/v1/invoices", draft_body, format="json").json()["id"]
    assert client.post(f"/api/v1/invoices/{draft}/issue").status_code == 200
    invoice = Invoice.objects.get(pk=draft)

    renders: list[int] = []
    original = facturx.to_facturx_pdf

    def slow_render(*args, **kwargs):
        renders.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every caller to arrive while the first one renders
        return original(*args, **kwargs)

    monkeypatch.setattr(facturx, "to_facturx_pdf", slow_render)
    results: list[RenderedDocument] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def ask() -> None:
        try:
            start.wait()
            results.append(services.invoice_render(invoice=Invoice.objects.get(pk=draft), fmt="facturx"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(renders) == 1
    assert len({document.pk for document in results}) == 1
    assert RenderedDocument.objects.filter(invoice=invoice, format="facturx").count() == 1
