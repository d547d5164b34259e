"""Give a Bugsink database the harness's user, team, project and API token.

The project's DSN key and the token are chosen by the harness before Bugsink starts, so the
stack can hand CodeSync its SENTRY_DSN at once. Two callers, one code:

- the local stack's tracker child (codesync_load/stack/tracker.py) imports `provision` after
  `django.setup()`;
- a Bugsink container (docker-compose.test.yml's `bugsink` service, whose image has no
  codesync_load) runs this file's source through `bugsink-manage shell -c`
  (`provision_script` in codesync_load/stack/tracker.py).

So this module imports nothing but the standard library, Django and Bugsink, and only inside
the function. Idempotent: a second call finds what the first created.
"""

from __future__ import annotations


def provision(key: str, token: str, project_name: str, quota: int) -> dict:
    """Create (or find) the user, team, project with sentry_key=key, and the token; returns
    {"project_id": ..., "dsn": ...} as Bugsink computes them."""
    import secrets
    import uuid

    from bsmain.models import AuthToken
    from django.contrib.auth import get_user_model
    from projects.models import Project
    from teams.models import Team

    user_model = get_user_model()
    if not user_model.objects.exists():
        user_model.objects.create_superuser(
            username="harness@codesync.invalid", email="harness@codesync.invalid", password=secrets.token_urlsafe(24)
        )
    team = Team.objects.first() or Team.objects.create(name="codesync-load")
    project = Project.objects.filter(name=project_name).first()
    if project is None:
        project = Project.objects.create(
            name=project_name, team=team, sentry_key=uuid.UUID(key), retention_max_event_count=quota
        )
    if not AuthToken.objects.filter(token=token).exists():
        AuthToken.create_full_access(token=token, description="codesync-load harness")
    return {"project_id": project.id, "dsn": project.dsn}
