from django import forms

from apps.catalog.models import Environment
from apps.testing import schedules
from apps.testing.models import TestSchedule


class TestScheduleForm(forms.ModelForm):
    """A schedule of one interface (set by the view): the environments offered are those it has an endpoint in."""

    class Meta:
        model = TestSchedule
        fields = ["name", "environment", "cron", "tag", "is_enabled"]
        labels = {"is_enabled": "Enabled"}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = Environment.objects.filter(
            endpoints__interface_id=self.instance.interface_id
        ).order_by("position", "name")
        self.fields["cron"].help_text = (
            "Five fields in UTC: minute hour day-of-month month day-of-week, "
            "e.g. 0 6 * * MON-FRI; or @hourly, @daily, @weekly, @monthly."
        )

    def clean_cron(self):
        try:
            return schedules.check_cron(self.cleaned_data["cron"])
        except schedules.CronError as exc:
            raise forms.ValidationError(str(exc))
