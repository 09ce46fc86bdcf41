"""REST API: import a Postman Collection v2.1 as test cases, as a dry run or for real."""

import json

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import policy
from apps.catalog.models import Interface
from apps.testing import postman


class PostmanImportSerializer(serializers.Serializer):
    interface = serializers.SlugRelatedField(slug_field="code", queryset=Interface.objects.all())
    collection = serializers.JSONField(
        required=False, help_text="The exported collection (Collection v2.1) as JSON."
    )
    file = serializers.FileField(
        required=False, help_text="Or the exported collection file (multipart)."
    )
    apply = serializers.BooleanField(
        default=False, help_text="False: only show the plan. True: save the cases."
    )

    def validate(self, attrs):
        if ("collection" in attrs) == ("file" in attrs):
            raise serializers.ValidationError(
                {"collection": "Give the collection as JSON or as a file, not both."}
            )
        upload = attrs.get("file")
        if upload is not None and upload.size > postman.MAX_BYTES:
            raise serializers.ValidationError(
                {
                    "file": f"The file is {upload.size // 1024} KB; "
                    f"the limit is {postman.MAX_BYTES // 1024} KB."
                }
            )
        return attrs

    def collection_bytes(self) -> bytes:
        upload = self.validated_data.get("file")
        if upload is not None:
            return upload.read()
        collection = self.validated_data["collection"]
        # A collection sent as a JSON string (or a multipart text field) is the file's text.
        if isinstance(collection, str):
            return collection.encode()
        return json.dumps(collection).encode()


class PostmanPlanSerializer(serializers.Serializer):
    """The plan of an import: what it adds, changes, skips, and what stops it."""

    interface = serializers.CharField()
    collection = serializers.CharField(help_text="The collection's name.")
    applied = serializers.BooleanField()
    add = serializers.ListField(
        child=serializers.DictField(),
        help_text="New cases: name, source (the request's JSON path), method, path, warnings.",
    )
    change = serializers.ListField(
        child=serializers.DictField(),
        help_text="Cases of the same name that would change: id, name, source, "
        "changes {field: [old, new]}, warnings.",
    )
    unchanged = serializers.ListField(child=serializers.CharField())
    skipped = serializers.ListField(
        child=serializers.DictField(),
        help_text="Requests not imported (formdata and file bodies): name, source, reason.",
    )
    warnings = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(
        child=serializers.DictField(),
        help_text="Problems that stop the import: name, source, message.",
    )


class PostmanImportView(APIView):
    """Plans test cases from a Postman collection; saves them with ``"apply": true``."""

    @extend_schema(
        operation_id="test_cases_import_postman",
        request={
            "application/json": PostmanImportSerializer,
            "multipart/form-data": PostmanImportSerializer,
        },
        responses={200: PostmanPlanSerializer},
        tags=["test-cases"],
    )
    def post(self, request):
        """Dry run by default: the plan of added and changed cases, skipped requests, warnings
        and errors. With ``apply`` the cases are saved in one transaction, or none when any has
        an error (400). Cases of the interface the collection does not name are left alone."""
        serializer = PostmanImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interface = serializer.validated_data["interface"]
        if not policy.can_change(request.user, interface):
            raise exceptions.PermissionDenied(
                "You may only write test cases of your own teams' interfaces."
            )
        field = "file" if "file" in serializer.validated_data else "collection"
        try:
            plan = postman.parse_collection(serializer.collection_bytes())
        except postman.CollectionError as exc:
            raise serializers.ValidationError({field: str(exc)})
        apply = serializer.validated_data["apply"]
        if apply:
            try:
                changes = postman.apply_plan(request.user, interface, plan)
            except postman.ImportRefused as exc:
                raise serializers.ValidationError(
                    {field: [error["message"] for error in exc.errors]}
                )
        else:
            changes = postman.changes_for(interface, plan)
        return Response({"interface": interface.code, "applied": apply, **changes.as_dict()})
