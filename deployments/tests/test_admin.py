"""The admin lists runs, log lines and build logs, read-only."""

from django.urls import reverse

from . import mini as m


def test_the_admin_shows_runs_and_build_logs_read_only(
    client, django_user_model, workspace, bob, run_pipeline
):
    m.add_pipeline(workspace, bob, "gated", [{"Name": "Promote", "Kind": "approval_gate"}])
    run = run_pipeline(workspace, "gated", bob)
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    for model in ("pipelinerun", "logline", "buildlog"):
        assert client.get(reverse(f"admin:deployments_{model}_changelist")).status_code == 200, model
    page = client.get(reverse("admin:deployments_pipelinerun_change", args=[run.pk]))
    assert page.status_code == 200 and "Promote" in page.content.decode()
    assert client.get(reverse("admin:deployments_buildlog_add")).status_code == 403
