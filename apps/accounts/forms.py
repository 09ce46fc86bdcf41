from django import forms

from apps.accounts.models import MAX_TOKEN_DAYS


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. 'Jira sync' or 'CI pipeline'."
    )
    days = forms.IntegerField(
        min_value=1, max_value=MAX_TOKEN_DAYS, initial=90, label="Expires in (days)"
    )
