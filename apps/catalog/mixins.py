"""View mixins for objects that belong to an interface named in the URL."""

from django.shortcuts import get_object_or_404

from apps.accounts import policy
from apps.catalog.models import Interface


class InterfaceChildCreateMixin:
    """A create view for an object of the interface in the URL (``<code>``).

    Only people who may change that interface get the form; the new object
    starts attached to it. ``child_model`` is the model created.
    """

    child_model = None

    def dispatch(self, request, *args, **kwargs):
        self.interface = get_object_or_404(Interface, code=kwargs["code"])
        if request.user.is_authenticated:
            policy.require_change(request.user, self.interface)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = self.child_model(interface=self.interface)
        return kwargs
