"""The settings page's forms. They parse input; the rules (and their messages) are
notifications.targets'."""

from django import forms

from .events import EVENTS
from .models import TargetKind

EVENT_CHOICES = list(EVENTS.items())


class TargetForm(forms.Form):
    name = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "e.g. ops-slack"}))
    kind = forms.ChoiceField(choices=TargetKind.choices, initial=TargetKind.WEBHOOK)
    destination = forms.CharField(
        required=False,
        label="URL or address",
        widget=forms.TextInput(
            attrs={"placeholder": "https://… (webhook, Slack) or name@example.com (email)"}
        ),
    )
    events = forms.MultipleChoiceField(
        required=False, choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, initial=list(EVENTS)
    )
    secret = forms.CharField(
        required=False,
        label="Signing secret",
        widget=forms.PasswordInput(
            attrs={"placeholder": "blank: the portal draws one", "autocomplete": "off"}
        ),
    )


class TargetEditForm(forms.Form):
    name = forms.CharField(required=False)
    destination = forms.CharField(required=False, label="New URL or address")
    events = forms.MultipleChoiceField(
        required=False, choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        required=False,
        label="New signing secret",
        widget=forms.PasswordInput(attrs={"placeholder": "blank: keep it", "autocomplete": "off"}),
    )
    rotate_secret = forms.BooleanField(required=False, label="draw a new secret")
