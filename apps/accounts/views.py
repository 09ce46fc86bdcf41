from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic import DetailView
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts import policy
from apps.accounts.api import revoke_token
from apps.accounts.filters import TeamFilter, UserFilter
from apps.accounts.forms import ApiTokenForm, TeamForm, UserAccessForm
from apps.accounts.mixins import AuditedCreateView, AuditedDeleteView, AuditedUpdateView
from apps.accounts.models import ApiToken, Team, User
from apps.core import audit
from apps.core.listing import FilteredListView
from apps.core.models import AuditAction
from apps.core.queries import related_count


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
    if request.htmx:
        return HttpResponseClientRedirect(reverse("accounts:tokens"))
    return redirect("accounts:tokens")


# ---------------------------------------------------------------- teams and people


class TeamList(FilteredListView):
    template_name = "accounts/team_list.html"
    filterset_class = TeamFilter
    sort_fields = {"name": "name", "members": "member_count", "interfaces": "interface_count"}
    default_sort = "name"
    csv_filename = "teams.csv"
    csv_columns = [
        ("name", lambda t: t.name),
        ("slug", lambda t: t.slug),
        ("members", lambda t: t.member_count),
        ("interfaces", lambda t: t.interface_count),
        ("description", lambda t: t.description),
    ]

    def base_queryset(self):
        # Interfaces live in the catalog app, above this one: reach them through the relation.
        interface_model = Team._meta.get_field("interfaces").related_model
        return Team.objects.annotate(
            member_count=related_count(User.teams.through, "team"),
            interface_count=related_count(interface_model, "owner_team"),
        )


class TeamDetail(LoginRequiredMixin, DetailView):
    template_name = "accounts/team_detail.html"
    slug_url_kwarg = "slug"
    queryset = Team.objects.all()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            members=self.object.members.order_by("username"),
            interfaces=self.object.interfaces.select_related("source_system", "target_system"),
            systems=self.object.systems.all(),
            history=audit.history_for(self.object)[:50],
            can_change=policy.can_change(self.request.user, self.object),
        )
        return context


class TeamCreate(AuditedCreateView):
    form_class = TeamForm
    extra_context = {"title": "New team"}
    forbidden_message = "Only admins create teams."

    def check_team(self, form):
        return self.request.user.is_portal_admin


class TeamUpdate(AuditedUpdateView):
    form_class = TeamForm
    slug_url_kwarg = "slug"
    queryset = Team.objects.all()


class TeamDelete(AuditedDeleteView):
    slug_url_kwarg = "slug"
    queryset = Team.objects.all()

    def get_success_url(self):
        return reverse("accounts:team_list")


class UserList(FilteredListView):
    template_name = "accounts/user_list.html"
    filterset_class = UserFilter
    sort_fields = {"username": "username", "role": "role", "last_login": "last_login"}
    default_sort = "username"
    csv_filename = "people.csv"
    csv_columns = [
        ("username", lambda u: u.username),
        ("name", lambda u: u.get_full_name()),
        ("email", lambda u: u.email),
        ("role", lambda u: u.get_role_display()),
        ("teams", lambda u: ", ".join(t.name for t in u.teams.all())),
        ("active", lambda u: u.is_active),
        ("last_login", lambda u: u.last_login),
    ]

    def base_queryset(self):
        return User.objects.prefetch_related(
            Prefetch("teams", queryset=Team.objects.only("id", "name", "slug"))
        )


class UserUpdate(AuditedUpdateView):
    form_class = UserAccessForm
    queryset = User.objects.all()

    def m2m_values(self, form):
        return {"teams": form.cleaned_data["teams"]}
