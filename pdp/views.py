"""The PDP's webhook callbacks (XP Z12-013 ``WebhookCallback``): signed with the key the PDP gave at
subscription (Afnor-Signature); a valid call makes Scell fetch that organisation's new flows at once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pdp.models import Mailbox
from pdp.services import webhook_verify


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, mailbox_id: str) -> HttpResponse:
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    signature = request.headers.get("Afnor-Signature", "")
    timestamp = request.headers.get("Afnor-Signature-Timestamp", "")
    if mailbox is None or not webhook_verify(
        mailbox=mailbox, body=request.body, signature=signature, timestamp=timestamp
    ):
        # Same answer for an unknown mailbox and a bad signature: nothing to learn by probing.
        return JsonResponse(
            {"errorCode": "INVALID_SIGNATURE", "errorMessage": "Signature check failed."}, status=401
        )
    from pdp.tasks import poll_mailbox

    # The body names one flow, but polling the organisation picks it up with anything else new, and
    # applies each flow once whatever called first (webhook, poll, retry).
    poll_mailbox.send(str(mailbox.id))
    return HttpResponse(status=200)
