"""The list pages' filters (query-string parameters → queryset), with django-filter.

A value a filter cannot take (an unknown type, a verb nobody used) is left out and shown
as an error next to the filter; the other filters still apply.
"""

import django_filters
from django import forms

from .models import ResourceStatus


def _search(placeholder):
    return forms.TextInput(attrs={"placeholder": placeholder, "type": "search"})


class ComponentFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", widget=_search("name contains…"))
    type = django_filters.ChoiceFilter(field_name="schema", empty_label="any type")
    status = django_filters.ChoiceFilter(
        field_name="resource_status", choices=ResourceStatus.choices, empty_label="any status"
    )

    def __init__(self, data, queryset, types):
        super().__init__(data, queryset)
        self.filters["type"].extra["choices"] = [(t, t) for t in types]


class AuditFilter(django_filters.FilterSet):
    verb = django_filters.ChoiceFilter(empty_label="any verb")
    actor = django_filters.ChoiceFilter(field_name="actor__username", empty_label="anyone")
    target = django_filters.CharFilter(lookup_expr="icontains", widget=_search("target contains…"))

    def __init__(self, data, queryset, verbs, actors):
        super().__init__(data, queryset)
        self.filters["verb"].extra["choices"] = [(v, v) for v in verbs]
        self.filters["actor"].extra["choices"] = [(a, a) for a in actors]
