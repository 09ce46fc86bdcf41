import os

from django.core.management.base import BaseCommand

from apps.catalog import demo


class Command(BaseCommand):
    help = "Loads the demo catalog and the demo users (admin, lead, engineer, viewer). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PONTIS_PORT", "8000")))

    def handle(self, *args, port, **options):
        result = demo.load(password=os.environ.get("DEMO_PASSWORD") or None, port=port)
        if result["password"]:
            self.stdout.write(
                self.style.SUCCESS("Demo sign-ins (users admin, lead, engineer, viewer):")
            )
            self.stdout.write(f"  password: {result['password']}")
            if not os.environ.get("DEMO_PASSWORD"):
                self.stdout.write(
                    "  (generated now and shown once; set DEMO_PASSWORD to choose your own)"
                )
        else:
            self.stdout.write(
                "Demo data present; demo passwords unchanged (set DEMO_PASSWORD to reset them)."
            )
