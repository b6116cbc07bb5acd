from django.db import migrations, models


def record_forks(apps, schema_editor):
    """The HEAD version each change set was opened on, from its `changeset.created` event."""
    ChangeSet = apps.get_model("portal", "ChangeSet")
    AuditEvent = apps.get_model("portal", "AuditEvent")
    for cs in ChangeSet.objects.all():
        created = AuditEvent.objects.filter(change_set=cs, verb="changeset.created").first()
        forked = (created.after or {}).get("base_version") if created else None
        cs.forked_from_version = forked if forked is not None else cs.base_version
        cs.save(update_fields=["forked_from_version"])


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_workspace_allow_private_http_checks"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="changesetentry",
            options={"ordering": ["name"], "verbose_name_plural": "change set entries"},
        ),
        migrations.AddField(
            model_name="changeset",
            name="forked_from_version",
            field=models.PositiveIntegerField(
                blank=True, help_text="HEAD version this change set was opened on", null=True
            ),
        ),
        migrations.RunPython(record_forks, migrations.RunPython.noop),
    ]
