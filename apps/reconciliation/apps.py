from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "apps.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self):
        from apps.reconciliation import tasks  # noqa: F401  (registers the job model)
