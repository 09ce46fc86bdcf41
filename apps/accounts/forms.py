from django import forms

from apps.accounts.models import MAX_TOKEN_DAYS, Role, Team, User


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. 'Jira sync' or 'CI pipeline'."
    )
    days = forms.IntegerField(
        min_value=1, max_value=MAX_TOKEN_DAYS, initial=90, label="Expires in (days)"
    )


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)


class UserAccessForm(forms.ModelForm):
    """What an admin changes about a person: role, teams, and whether they may sign in."""

    class Meta:
        model = User
        fields = ["role", "teams", "is_active"]
        widgets = {"teams": forms.CheckboxSelectMultiple}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.acting_user = user

    def clean(self):
        cleaned = super().clean()
        if (
            self.instance == self.acting_user
            and (cleaned.get("role") != Role.ADMIN or not cleaned.get("is_active"))
            and not self.instance.is_superuser
        ):
            raise forms.ValidationError("You cannot take away your own admin role or access.")
        return cleaned
