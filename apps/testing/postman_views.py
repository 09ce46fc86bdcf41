"""Browser view: import a Postman collection as test cases — upload, read the plan, apply it.

Between the two steps the uploaded collection waits in the user's session (compressed),
tied to the interface and to its digest: the Apply button posts the digest back, so a plan
applied is always the plan shown, even with two uploads open in two tabs.
"""

import base64
import hashlib
import json
import zlib

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts import policy
from apps.catalog.models import Interface
from apps.testing import postman

SESSION_KEY = "postman_import"


class PostmanUploadForm(forms.Form):
    file = forms.FileField(
        label="Collection file",
        help_text="A Postman Collection v2.1 export (JSON, at most 5 MB). Nothing is saved "
        "until you apply the plan.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > postman.MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024} KB; the limit is {postman.MAX_BYTES // 1024} KB."
            )
        return upload


def _keep(request, interface: Interface, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    request.session[SESSION_KEY] = {
        "interface": interface.code,
        "digest": digest,
        "data": base64.b64encode(zlib.compress(data)).decode(),
    }
    return digest


def _kept(request, interface: Interface, digest: str) -> bytes | None:
    kept = request.session.get(SESSION_KEY)
    if not kept or kept["interface"] != interface.code or kept["digest"] != digest:
        return None
    return zlib.decompress(base64.b64decode(kept["data"]))


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _render_plan(request, interface, form, changes, digest=""):
    plan = changes.as_dict()
    for entry in plan["change"]:
        entry["shown_changes"] = [
            (name, _shown(old), _shown(new)) for name, (old, new) in entry["changes"].items()
        ]
    return render(
        request,
        "testing/postman_import.html",
        {"interface": interface, "form": form, "plan": plan, "digest": digest},
    )


@login_required
@require_http_methods(["GET", "POST"])
def postman_import(request, code):
    """GET: the upload form. POST a file: the plan. POST ``apply``: save it, back to contracts."""
    interface = get_object_or_404(Interface, code=code)
    if not policy.can_change(request.user, interface):
        raise PermissionDenied("You may only import test cases into your own teams' interfaces.")
    if request.method == "POST" and "apply" in request.POST:
        return _apply(request, interface)
    form = PostmanUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"].read()
        try:
            plan = postman.parse_collection(data)
        except postman.CollectionError as exc:
            form.add_error("file", str(exc))
        else:
            changes = postman.changes_for(interface, plan)
            digest = _keep(request, interface, data) if not changes.errors else ""
            return _render_plan(request, interface, form, changes, digest)
    return render(request, "testing/postman_import.html", {"interface": interface, "form": form})


def _apply(request, interface):
    data = _kept(request, interface, request.POST.get("digest", ""))
    if data is None:
        messages.error(request, "That upload is no longer waiting to be applied: upload it again.")
        return redirect("testing:postman_import", code=interface.code)
    plan = postman.parse_collection(data)
    try:
        changes = postman.apply_plan(request.user, interface, plan)
    except postman.ImportRefused:
        # The interface changed since the plan was shown (a new spec, a renamed case).
        return _render_plan(
            request, interface, PostmanUploadForm(), postman.changes_for(interface, plan)
        )
    del request.session[SESSION_KEY]
    messages.success(
        request,
        f"Imported {plan.collection_name}: {len(changes.add)} test cases added, "
        f"{len(changes.change)} changed, {len(changes.unchanged)} unchanged.",
    )
    return redirect("testing:contracts", code=interface.code)
