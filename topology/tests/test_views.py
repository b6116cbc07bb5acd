"""The topology page, its SVG fragment and the downloads, from the three seats."""

import os
import re
import shutil
from html import unescape

import pytest

from portal.models import ChangeSet, Workspace
from topology import render

from .test_build import change_set, make_head, tonys_chips

BASE = "/workspaces/tonys-chips"
URLS = [
    f"{BASE}/topology/",
    f"{BASE}/topology/svg/",
    f"{BASE}/topology.svg",
    f"{BASE}/topology.png",
    f"{BASE}/topology.dot",
]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz dot binary")


@pytest.fixture
def shop(workspace):
    make_head(workspace, tonys_chips(), statuses={"web-service": ("pending", [])})
    return workspace


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setitem(os.environ, "PATH", str(empty))


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_anonymous_users_are_sent_to_sign_in(client, shop, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", URLS)
def test_an_outsider_gets_404(client, shop, users, url):
    login(client, users["outsider"])
    assert client.get(url).status_code == 404
    assert client.get(url.replace("tonys-chips", "no-such-workspace")).status_code == 404


@needs_dot
@pytest.mark.parametrize("seat", ["approver", "editor"])
@pytest.mark.parametrize("url", URLS)
def test_members_see_every_url(client, shop, users, seat, url):
    login(client, users[seat])
    assert client.get(url).status_code == 200


def test_a_change_set_of_another_workspace_is_404(client, shop, users):
    other = Workspace.objects.get(slug="other")
    theirs = ChangeSet.objects.create(workspace=other, name="x", author=users["outsider"], base_version=0)
    mine = change_set(shop, users["editor"], {})
    login(client, users["approver"])
    for url in URLS:
        assert client.get(url, {"changeset": theirs.pk}).status_code == 404
        assert client.get(url, {"changeset": 999999}).status_code == 404
        assert client.get(url, {"changeset": "1 OR 1=1"}).status_code == 404
    assert client.get(f"{BASE}/topology.dot", {"changeset": mine.pk}).status_code == 200
    login(client, users["outsider"])
    assert client.get("/workspaces/other/topology.dot", {"changeset": mine.pk}).status_code == 404


def test_an_unknown_view_is_a_bad_request(client, shop, users):
    login(client, users["editor"])
    response = client.get(f"{BASE}/topology.dot", {"view": "everything"})
    assert response.status_code == 400 and b"infrastructure or services" in response.content


# --- The page -----------------------------------------------------------------------------


@needs_dot
def test_the_page_returns_at_once_and_loads_the_svg_with_htmx(client, shop, users, cache_dir):
    login(client, users["editor"])
    response = client.get(
        f"{BASE}/topology/",
        {"view": "services", "type": ["AWS::ECS::Service", "data"], "focus": "web-service", "hops": "2"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    query = "?view=services&amp;type=AWS%3A%3AECS%3A%3AService&amp;type=data&amp;focus=web-service&amp;hops=2"
    assert f'hx-get="{BASE}/topology/svg/{query}"' in html and 'hx-trigger="load"' in html
    assert "Rendering…" in html
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # nothing rendered by the page itself
    for fmt in ("svg", "png", "dot"):
        assert f'href="{BASE}/topology.{fmt}{query}"' in html
    assert f'href="{BASE}/topology/?type=AWS%3A%3AECS%3A%3AService' in html  # switch to infrastructure
    assert 'value="AWS::ECS::Service" checked' in html and 'value="data" checked' in html
    assert 'name="focus"' in html and 'value="web-service"' in html and 'name="hops"' in html
    assert '<option value="smoke-test-task">' in html
    assert "Legend" in html and "drifted" in html and "Changes" not in html


@needs_dot
def test_the_fragment_embeds_the_svg_inline(client, shop, users):
    login(client, users["approver"])
    response = client.get(f"{BASE}/topology/svg/", {"view": "services"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<svg") and "<?xml" not in html and "DOCTYPE" not in html
    assert 'xlink:href="/workspaces/tonys-chips/components/web-service/"' in html
    assert "status: pending" in html  # the hover tooltip
    assert "API_URL: api.tonys-chips.local:3000" in unescape(html)


@needs_dot
def test_the_change_set_page_has_the_diff_legend(client, shop, users):
    after = tonys_chips()
    cs = change_set(
        shop,
        users["editor"],
        {
            "web-service": (
                "edit",
                after["web-service"][0],
                {**after["web-service"][1], "DesiredCount": 3},
                False,
            )
        },
    )
    login(client, users["approver"])
    html = client.get(f"{BASE}/topology/", {"changeset": cs.pk}).content.decode()
    assert "Changes" in html and "deleted edge" in html and f"change set #{cs.pk}" in html
    svg = client.get(f"{BASE}/topology/svg/", {"changeset": cs.pk}).content.decode()
    assert f"components/web-service/?changeset={cs.pk}" in svg
    assert "~ web-service" in unescape(svg) and "Legend" in svg


@needs_dot
def test_a_change_sets_page_fades_hides_or_shows_what_it_does_not_touch(client, shop, users):
    schema, props = tonys_chips()["web-service"]
    cs = change_set(
        shop, users["editor"], {"web-service": ("edit", schema, {**props, "DesiredCount": 3}, False)}
    )
    login(client, users["approver"])
    html = client.get(f"{BASE}/topology/", {"changeset": cs.pk}).content.decode()
    assert 'data-open-on="changes"' in html
    for others in ("hide", "show"):
        assert f'href="{BASE}/topology/?changeset={cs.pk}&amp;others={others}"' in html
    assert (
        f'href="{BASE}/topology/?changeset={cs.pk}" class="active" aria-current="page">Fade the rest' in html
    )
    svg = client.get(f"{BASE}/topology/svg/", {"changeset": cs.pk}).content.decode()
    assert 'class="node faded"' in svg and 'class="node changed"' in svg

    hide = client.get(f"{BASE}/topology/", {"changeset": cs.pk, "others": "hide"}).content.decode()
    query = f"?changeset={cs.pk}&amp;others=hide"
    assert f'hx-get="{BASE}/topology/svg/{query}"' in hide and f'href="{BASE}/topology.png{query}"' in hide
    assert 'name="others" value="hide"' in hide  # the filter form keeps it
    hidden = client.get(f"{BASE}/topology.dot", {"changeset": cs.pk, "others": "hide"}).content.decode()
    assert '"web-service"' in hidden and '"db"' not in hidden

    show = client.get(f"{BASE}/topology/", {"changeset": cs.pk, "others": "show"}).content.decode()
    assert 'data-open-on=""' in show
    assert (
        "faded"
        not in client.get(f"{BASE}/topology.dot", {"changeset": cs.pk, "others": "show"}).content.decode()
    )

    response = client.get(f"{BASE}/topology.dot", {"changeset": cs.pk, "others": "blur"})
    assert response.status_code == 400 and b"fade or hide or show" in response.content


def test_the_page_keeps_the_workspace_navigation(client, shop, users):
    login(client, users["editor"])
    html = client.get(f"{BASE}/topology/").content.decode()
    assert '<nav class="wsnav" aria-label="Workspace">' in html
    assert f'<a href="{BASE}/topology/" class="active">Topology</a>' in html
    assert f'href="{BASE}/changesets/"' in html and f'href="{BASE}/components/"' in html


def test_the_page_has_no_inline_script_or_handler(client, shop, users):
    login(client, users["editor"])
    html = client.get(f"{BASE}/topology/").content.decode()
    scripts = re.findall(r"<script\b([^>]*)>", html)
    assert all(" src=" in attrs for attrs in scripts)  # nothing inline
    assert any("svg-pan-zoom" in attrs for attrs in scripts) and any("topology" in attrs for attrs in scripts)
    assert not re.search(r"\son[a-z]+=|hx-on|style=", html)


def test_unknown_focus_says_so(client, shop, users):
    login(client, users["editor"])
    response = client.get(f"{BASE}/topology/svg/", {"focus": "nope"})
    assert response.status_code == 200 and "No component named" in response.content.decode()


# --- Downloads ----------------------------------------------------------------------------


@needs_dot
def test_downloads_and_their_content_types(client, shop, users):
    login(client, users["editor"])
    svg = client.get(f"{BASE}/topology.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"</svg>" in svg.content
    assert svg["Content-Disposition"] == 'inline; filename="tonys-chips-topology.svg"'
    assert "default-src 'none'" in svg["Content-Security-Policy"]
    png = client.get(f"{BASE}/topology.png", {"view": "services"})
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png["Content-Disposition"] == 'inline; filename="tonys-chips-topology-services.png"'
    text = client.get(f"{BASE}/topology.dot").content.decode()
    assert text.startswith("digraph topology {") and '"stack" -> "api-service"' in text


def test_an_unchanged_graph_is_served_from_the_cache(client, shop, users, cache_dir, monkeypatch, tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("needs the Graphviz dot binary")
    login(client, users["editor"])
    first = client.get(f"{BASE}/topology.svg")
    files = sorted(p.name for p in cache_dir.iterdir())
    assert len(files) == 1 and files[0] == first["ETag"].strip('"') + ".svg"
    # Graphviz gone: the cached rendering is still served, byte for byte.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setitem(os.environ, "PATH", str(empty))
    again = client.get(f"{BASE}/topology.svg")
    assert again.status_code == 200 and again.content == first.content
    assert client.get(f"{BASE}/topology.svg", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    # A changed graph needs Graphviz again.
    shop.components.filter(name="vpc").update(resource_status="failed")
    assert client.get(f"{BASE}/topology.svg").status_code == 503


# --- Without Graphviz ---------------------------------------------------------------------


def test_without_graphviz_the_page_explains_and_offers_the_dot_file(client, shop, users, no_graphviz):
    login(client, users["editor"])
    html = client.get(f"{BASE}/topology/").content.decode()
    assert "apt-get install graphviz" in html and "brew install graphviz" in html
    assert f'href="{BASE}/topology.dot"' in html and "hx-get" not in html
    fragment = client.get(f"{BASE}/topology/svg/").content.decode()
    assert "apt-get install graphviz" in fragment and f"{BASE}/topology.dot" in fragment
    for fmt in ("svg", "png"):
        response = client.get(f"{BASE}/topology.{fmt}")
        assert response.status_code == 503
        assert (
            b"apt-get install graphviz" in response.content and b"brew install graphviz" in response.content
        )
    assert client.get(f"{BASE}/topology.dot").status_code == 200


def test_render_raises_graphviz_missing(no_graphviz, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    with pytest.raises(render.GraphvizMissing):
        render.render("digraph { a -> b }\n", "svg")
    assert render.render("digraph { a -> b }\n", "dot") == b"digraph { a -> b }\n"


@needs_dot
def test_hostile_names_and_parameters_stay_text(client, workspace, users):
    evil = "--><script>alert(1)</script><!--"
    make_head(
        workspace,
        {
            evil: ("AWS::SQS::Queue", {}),
            "fn": ("AWS::Lambda::Function", {"Q": {"$source": {"component": evil, "path": "/si/name"}}}),
        },
    )
    login(client, users["editor"])
    for params in (
        {},
        {"focus": evil},
        {"type": "<img src=x onerror=alert(1)>"},
        {"focus": '"><svg onload=alert(1)>'},
    ):
        for url in (f"{BASE}/topology/", f"{BASE}/topology/svg/"):
            html = client.get(url, params).content.decode()
            assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
