"""Shared by the benchmarks: a throwaway database and a synthetic workspace.

Uses DATABASE_URL when set (e.g. the local Postgres), else a SQLite file in a temp dir.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django():
    """A fresh database for this run: a new Postgres database when DATABASE_URL points at
    Postgres (dropped at exit), else a SQLite file in a temp dir."""
    tmp = tempfile.mkdtemp(prefix="portal-bench-")
    os.environ.setdefault("PORTAL_VAR_DIR", tmp)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        os.environ["DATABASE_URL"] = _fresh_postgres(url)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _fresh_postgres(url):
    import atexit
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"portal_bench_{os.getpid()}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop():
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    atexit.register(drop)
    return urlunsplit(parts._replace(path=f"/{name}"))


def src(component, path):
    return {"$source": {"component": component, "path": path}}


def build_workspace(slug, n_components, fan=10, chain=10):
    """n_components security groups in trees: a root feeds `fan` chains of `chain`
    components through /domain/GroupDescription, so editing a root moves fan*chain others."""
    from django.contrib.auth import get_user_model

    from portal import graph
    from portal.models import Component, Membership, Workspace

    user, _ = get_user_model().objects.get_or_create(username="bench")
    ws = Workspace.objects.create(slug=slug, name=slug, approvals_required=0)
    Membership.objects.get_or_create(workspace=ws, user=user, defaults={"role": "admin"})
    rows, tree_size = [], 1 + fan * chain
    for t in range(n_components // tree_size + 1):
        root = f"t{t}-root"
        rows.append((root, {"GroupDescription": f"tree {t}"}))
        for f in range(fan):
            for c in range(chain):
                producer = root if c == 0 else f"t{t}-f{f}-c{c - 1}"
                rows.append(
                    (f"t{t}-f{f}-c{c}", {"GroupDescription": src(producer, "/domain/GroupDescription")})
                )
    rows = rows[:n_components]
    Component.objects.bulk_create(
        [Component(workspace=ws, name=n, schema="AWS::EC2::SecurityGroup", properties=p) for n, p in rows],
        batch_size=1000,
    )
    graph.reindex(ws, dict(rows))
    # Resolve everything once, tree by tree, as merges would have.
    roots = [n for n, _ in rows if n.endswith("-root")]
    for i in range(0, len(roots), 20):
        graph.propagate(ws, set(roots[i : i + 20]))
    analyze()
    return ws, user


def analyze():
    """Fresh planner statistics, as autovacuum keeps them in a running database (a merge of
    an import refreshes them too): else Postgres plans for the empty tables it last saw."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.ms = (time.perf_counter() - self.start) * 1000
