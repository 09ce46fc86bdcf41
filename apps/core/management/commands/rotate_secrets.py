from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core import secrets

CIPHERTEXT_FIELD = "credentials_ciphertext"


class Command(BaseCommand):
    help = (
        "Re-encrypts every stored credential with the first key of PONTIS_SECRET_KEYS. "
        "Idempotent: values already under that key are left alone."
    )

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            if CIPHERTEXT_FIELD not in {f.name for f in model._meta.concrete_fields}:
                continue
            rotated = 0
            rows = model._default_manager.exclude(**{CIPHERTEXT_FIELD: ""}).values_list(
                "pk", CIPHERTEXT_FIELD
            )
            for pk, token in rows.iterator(chunk_size=500):
                if secrets.needs_rotation(token):
                    with transaction.atomic():
                        model._default_manager.filter(pk=pk, **{CIPHERTEXT_FIELD: token}).update(
                            **{CIPHERTEXT_FIELD: secrets.rotate_token(token)}
                        )
                    rotated += 1
            self.stdout.write(f"{model._meta.label}: {rotated} re-encrypted")
            total += rotated
        self.stdout.write(
            self.style.SUCCESS(f"Done: {total} credentials re-encrypted with the current key.")
        )
