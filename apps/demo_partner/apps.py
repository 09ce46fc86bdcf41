from django.apps import AppConfig


class DemoPartnerConfig(AppConfig):
    name = "apps.demo_partner"
    label = "demo_partner"
    verbose_name = "Demo partner API"
