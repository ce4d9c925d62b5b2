from django.apps import AppConfig


class PdpSimulatorConfig(AppConfig):
    name = "pdp.simulator"
    label = "pdp_simulator"
    verbose_name = "PDP simulator (sandbox)"
