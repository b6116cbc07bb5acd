"""The apply's hot statements answer what the ORM would: the same rows, values and counts,
on Postgres and on SQLite (UUIDs, JSON, timestamps converted the same way)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import statements
from portal.models import Component
from portal.tests.factories import head


@pytest.fixture
def three(shop, users):
    comps = head(shop, users["editor"], {"web": ("AWS::Logs::LogGroup", {"RetentionInDays": 7})})
    Component.objects.filter(pk=comps["web"].pk).update(
        resource_value={"Arn": "arn:aws:logs:web", "Nested": [1, {"a": None}]}, refreshed_at=timezone.now()
    )
    return shop


def _fields(c):
    return {f.attname: getattr(c, f.attname) for f in Component._meta.concrete_fields}


def test_select_answers_the_instances_the_orm_makes(three):
    names = ["web", "vpc", "absent"]
    orm = sorted(Component.objects.filter(workspace=three, name__in=names), key=lambda c: c.name)
    ours = statements.select(
        Component,
        "{workspace_id} = %s AND {name} IN " + statements.placeholders(len(names)),
        [three.pk, *names],
        order_by=("name",),
    )
    assert [c.name for c in ours] == ["vpc", "web"]
    assert [_fields(c) for c in ours] == [_fields(c) for c in orm]
    assert ours[1].resource_value == {"Arn": "arn:aws:logs:web", "Nested": [1, {"a": None}]}
    # A UUID primary key as a parameter: SQLite stores it as text without dashes.
    assert statements.select(Component, "{id} = %s", [ours[0].pk])[0].name == "vpc"


def test_select_locks_where_the_database_can(three):
    with transaction.atomic(), CaptureQueriesContext(connection) as seen:
        statements.select(Component, "{name} = %s", ["web"], lock=True)
    sql = seen.captured_queries[-1]["sql"]
    assert sql.endswith("FOR UPDATE") == connection.features.has_select_for_update


def test_values_and_update_answer_as_the_orm_does(three):
    web = Component.objects.get(workspace=three, name="web")
    when = timezone.now()
    changed = statements.update(
        Component,
        "{id} = %s AND {resource_status} <> %s",
        [web.pk, "ok"],
        resource_status="ok",
        applied={"RetentionInDays": 7},
        refreshed_at=when,
    )
    assert changed == 1
    web.refresh_from_db()
    assert (web.resource_status, web.applied, web.refreshed_at) == ("ok", {"RetentionInDays": 7}, when)
    # The condition no longer holds: nothing changes.
    assert (
        statements.update(Component, "{id} = %s AND {resource_status} <> %s", [web.pk, "ok"], version=9) == 0
    )
    rows = statements.values(Component, ("name", "applied", "refreshed_at"), "{id} = %s", [web.pk])
    assert rows == list(Component.objects.filter(pk=web.pk).values_list("name", "applied", "refreshed_at"))


def test_an_empty_in_list_is_refused():
    with pytest.raises(ValueError, match="at least one value"):
        statements.placeholders(0)
