from django.apps import AppConfig


class TestingConfig(AppConfig):
    name = "apps.testing"
    label = "testing"
    verbose_name = "Contract tests"

    def ready(self):
        from apps.testing import tasks  # noqa: F401  registers TestRun with apps.core.jobs
