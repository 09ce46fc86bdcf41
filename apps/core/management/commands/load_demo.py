import importlib
import importlib.util
import os

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = (
        "Loads the demo data of every app that has a demo module (catalog, users, test cases), "
        "in INSTALLED_APPS order. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PONTIS_PORT", "8000")))

    def handle(self, *args, port, **options):
        password = os.environ.get("DEMO_PASSWORD") or None
        new_password = None
        with transaction.atomic():
            for config in apps.get_app_configs():
                module_name = f"{config.name}.demo"
                if (
                    not config.name.startswith("apps.")
                    or importlib.util.find_spec(module_name) is None
                ):
                    continue
                result = (
                    importlib.import_module(module_name).load(password=password, port=port) or {}
                )
                new_password = new_password or result.get("password")
        if new_password:
            self.stdout.write(
                self.style.SUCCESS("Demo sign-ins (users admin, lead, engineer, viewer):")
            )
            self.stdout.write(f"  password: {new_password}")
            if not os.environ.get("DEMO_PASSWORD"):
                self.stdout.write(
                    "  (generated now and shown once; set DEMO_PASSWORD to choose your own)"
                )
        else:
            self.stdout.write(
                "Demo data present; demo passwords unchanged (set DEMO_PASSWORD to reset them)."
            )
