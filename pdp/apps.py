from django.apps import AppConfig
from django.core import checks


class PdpConfig(AppConfig):
    name = "pdp"
    verbose_name = "PDP transmission and lifecycle"

    def ready(self) -> None:
        checks.register(check_pdp_configured, checks.Tags.compatibility, deploy=True)


def check_pdp_configured(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Live invoices wait ("held") while no partner PDP is configured: say so before going live."""
    from django.conf import settings

    problems: list[checks.CheckMessage] = []
    if not settings.PDP_URL:
        problems.append(
            checks.Warning(
                "SCELL_PDP_URL is not set: live invoices will be held, not transmitted to a PDP.",
                hint="Set SCELL_PDP_URL and SCELL_PDP_TOKEN (or the OAuth2 client credentials).",
                id="pdp.W001",
            )
        )
    elif not (settings.PDP_TOKEN or (settings.PDP_TOKEN_URL and settings.PDP_CLIENT_ID)):
        problems.append(
            checks.Error(
                "SCELL_PDP_URL is set without credentials.",
                hint="Set SCELL_PDP_TOKEN, or the OAuth2 SCELL_PDP_TOKEN_URL / _CLIENT_ID / _CLIENT_SECRET.",
                id="pdp.E001",
            )
        )
    return problems
