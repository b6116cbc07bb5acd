"""The build-log list's filters (the history page, a workspace's page and `buildlog list`)."""

import django_filters
from django import forms
from django.db.models import Q

from .models import BuildLogStatus


class BuildLogFilter(django_filters.FilterSet):
    """`q`: words that must all appear in the log; `from`/`to`: dates, inclusive. An
    unknown status or workspace finds nothing; a date that is not one is left out."""

    workspace = django_filters.CharFilter(field_name="workspace__slug", widget=forms.Select)
    q = django_filters.CharFilter(
        method="has_words",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "words in the log"}),
    )
    status = django_filters.CharFilter(
        widget=forms.Select(
            choices=[("", "any"), *((v, label.lower()) for v, label in BuildLogStatus.choices)]
        )
    )
    component = django_filters.CharFilter(
        field_name="component_rows__name",
        lookup_expr="icontains",
        distinct=True,
        widget=forms.TextInput(attrs={"placeholder": "name"}),
    )
    author = django_filters.CharFilter(
        method="by_author", widget=forms.TextInput(attrs={"placeholder": "username"})
    )
    # The query string says "from" and "to", which are Python keywords.
    locals()["from"] = django_filters.DateFilter(
        field_name="date", lookup_expr="date__gte", widget=forms.DateInput(attrs={"type": "date"})
    )
    locals()["to"] = django_filters.DateFilter(
        field_name="date", lookup_expr="date__lte", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data, queryset, workspaces=None):
        """`workspaces`: those the workspace filter offers; None leaves it out."""
        super().__init__(data, queryset)
        if workspaces is None:
            del self.filters["workspace"]
        else:
            choices = [("", "any"), *((ws.slug, ws.slug) for ws in workspaces)]
            self.filters["workspace"].extra["widget"] = forms.Select(choices=choices)

    def has_words(self, queryset, name, value):
        for word in value.lower().split():
            queryset = queryset.filter(search_text__icontains=word)
        return queryset

    def by_author(self, queryset, name, value):
        return queryset.filter(Q(author__username=value) | Q(change_sets__author__username=value)).distinct()
