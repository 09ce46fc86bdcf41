"""Shared REST API plumbing: audited viewsets."""

from django.db import transaction
from rest_framework import viewsets

from apps.core import audit
from apps.core.models import AuditAction


class AuditedModelViewSet(viewsets.ModelViewSet):
    """A model viewset whose writes run in a transaction with an audit entry."""

    def perform_create(self, serializer):
        with transaction.atomic():
            instance = serializer.save()
            audit.record(self.request.user, instance, AuditAction.CREATE)

    def perform_update(self, serializer):
        with transaction.atomic():
            before = audit.snapshot(serializer.instance)
            instance = serializer.save()
            audit.record(self.request.user, instance, AuditAction.UPDATE, before)

    def perform_destroy(self, instance):
        with transaction.atomic():
            before = audit.snapshot(instance)
            audit.record(self.request.user, instance, AuditAction.DELETE, before)
            instance.delete()
