import defusedxml
from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        # Every XML parse in the process (XLSX, SOAP, XML payloads) goes through
        # defusedxml's guards against entity expansion and external entities.
        defusedxml.defuse_stdlib()
