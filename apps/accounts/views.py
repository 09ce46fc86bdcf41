from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.api import revoke_token
from apps.accounts.forms import ApiTokenForm
from apps.accounts.models import ApiToken
from apps.core import audit
from apps.core.models import AuditAction


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request):
    """The user's API tokens; a new token's key is shown once, on the page that created it."""
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST":
        if not request.user.can_write:
            raise PermissionDenied("Your role is read-only.")
        if form.is_valid():
            try:
                with transaction.atomic():
                    token, new_key = ApiToken.issue(
                        user=request.user,
                        name=form.cleaned_data["name"],
                        days=form.cleaned_data["days"],
                    )
                    audit.record(request.user, token, AuditAction.CREATE)
            except IntegrityError:
                form.add_error("name", "You already have a token with this name.")
            else:
                form = ApiTokenForm()
    user_tokens = ApiToken.objects.filter(user=request.user)
    return render(
        request, "accounts/tokens.html", {"form": form, "tokens": user_tokens, "new_key": new_key}
    )


@login_required
@require_POST
def revoke(request, pk):
    if not request.user.can_write:
        raise PermissionDenied("Your role is read-only.")
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    revoke_token(request.user, token)
    messages.success(request, f"Revoked {token.name}.")
    return redirect("accounts:tokens")
