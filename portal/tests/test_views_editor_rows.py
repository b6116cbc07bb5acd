"""The component editor's lists as rows (environment variables, tags, port mappings), its
picker that adds several subscriptions in one save, the registry's descriptions rendered,
and JSON whose error lines match the textarea's."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from portal import changesets
from portal.models import AuditEvent
from portal.spec import load_spec
from portal.tests.factories import SECRET, head, src

from .test_views_changesets import url

TD = "AWS::ECS::TaskDefinition"
TASK = {
    "Family": "web",
    "Cpu": "256",
    "Memory": "512",
    "ContainerDefinitions": [
        {
            "Name": "web",
            "Image": "web:1",
            "PortMappings": [{"ContainerPort": 3001, "Protocol": "tcp"}],
            "Environment": [
                {"Name": "NODE_ENV", "Value": "production"},
                {"Name": "DB_PASSWORD", "Value": SECRET},
                {"Name": "API_URL", "Value": "http://internal-alb:3000"},
            ],
        }
    ],
    "Tags": [{"Key": "team", "Value": "chips"}],
}
EDIT = "components/web-task/edit/"


class FormReader(HTMLParser):
    """What a browser would post for the editor's form as the page shows it (nothing inside
    a <template>, checkboxes only when checked, the selected option)."""

    def __init__(self):
        super().__init__()
        self.data, self.in_form, self.in_template = [], False, 0
        self.select, self.selected, self.textarea = None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and "editor" in (a.get("class") or ""):
            self.in_form = True
        if not self.in_form:
            return
        if tag == "template":
            self.in_template += 1
        if self.in_template:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                self.data.append((a["name"], a.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select":
            self.select, self.selected = a.get("name"), None
        elif tag == "option" and self.select:
            if self.selected is None or "selected" in a:
                self.selected = (a.get("value", ""), "selected" in a)
        elif tag == "textarea":
            self.textarea = [a["name"], ""]

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template -= 1
        elif tag == "select" and self.select:
            self.data.append((self.select, self.selected[0] if self.selected else ""))
            self.select = None
        elif tag == "textarea" and self.textarea:
            name, text = self.textarea
            self.data.append((name, text[1:] if text.startswith("\n") else text))
            self.textarea = None
        elif tag == "form":
            self.in_form = False

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data


def form_of(page):
    reader = FormReader()
    reader.feed(page.content.decode())
    out = {}
    for name, value in reader.data:
        out.setdefault(name, []).append(value)
    return out


def field(data, name, value):
    data[name] = [value]


def find(data, value):
    """The name of the input posting `value`."""
    return next(name for name, values in data.items() if value in values)


@pytest.fixture
def task(workspace, users):
    head(
        workspace,
        users["editor"],
        {
            "web-task": (TD, TASK),
            "api-lb": ("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Subnets": ["subnet-1", "subnet-2"]}),
        },
    )
    return workspace


@pytest.fixture
def cs(task, users):
    return changesets.create_change_set(task, users["editor"], "service-discovery")


def saved(cs):
    return cs.entries.get(name="web-task").properties


# --- Lists as rows ------------------------------------------------------------------------------


def test_it_edits_the_environment_as_rows_and_the_rest_as_json(seat, cs):
    page = seat("editor").get(url(cs, EDIT))
    html = page.content.decode()
    data = form_of(page)
    tables = {v[0] for k, v in data.items() if k.startswith("rows-") and k.endswith("-at")}
    assert {
        "/Tags",
        "/ContainerDefinitions/web/Environment",
        "/ContainerDefinitions/web/PortMappings",
    } <= tables
    assert "/ContainerDefinitions/web/Secrets" in tables  # absent, offered under "More lists"
    containers = json.loads(data["p__ContainerDefinitions"][0])
    assert containers == [{"Name": "web", "Image": "web:1"}]  # the rows hold the rest
    assert "Edited as rows below: Environment of /ContainerDefinitions/web, PortMappings of" in html
    assert "p__Tags" not in data  # a top-level keyed list is rows only
    env = find(data, "API_URL")
    assert data[env[:-1] + "1"] == ["http://internal-alb:3000"]


def test_a_document_read_back_from_its_rows_is_the_same_document(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    assert client.post(url(cs, EDIT), data).status_code == 302
    assert saved(cs) == TASK


def test_every_demo_component_reads_back_unchanged(seat, workspace, users):
    bob = users["editor"]
    spec = load_spec(Path(settings.BASE_DIR) / "examples" / "tonys-chips" / "workspace.yaml")
    seed = changesets.create_change_set(workspace, bob, "seed")
    changesets.apply_spec(seed, bob, spec)
    changesets.merge(seed, bob)
    cs = changesets.create_change_set(workspace, bob, "touch-everything")
    client = seat("editor")
    for component in spec.components:
        edit = url(cs, f"components/{component.name}/edit/")
        response = client.post(edit, form_of(client.get(edit)))
        assert response.status_code == 302, (component.name, response.content.decode()[:2000])
    assert changesets.diff(cs) == []


def test_rows_give_the_document_the_json_mode_gives(seat, task, users):
    client = seat("editor")
    by_rows = changesets.create_change_set(task, users["editor"], "by-rows")
    data = form_of(client.get(url(by_rows, EDIT)))
    api_url = find(data, "http://internal-alb:3000")
    field(data, api_url, "http://api.tonys-chips.local:3000")
    node_env = find(data, "NODE_ENV")
    data[node_env.rsplit("-", 1)[0] + "-remove"] = ["on"]  # drop NODE_ENV
    t = node_env.split("-")[1]
    blank = data[f"rows-{t}-row"][-1]  # the empty row each table ends with
    field(data, f"rows-{t}-{blank}-0", "WEB_URL")
    field(data, f"rows-{t}-{blank}-1", "http://web:3001")
    assert client.post(url(by_rows, EDIT), data).status_code == 302

    by_json = changesets.create_change_set(task, users["editor"], "by-json")
    document = json.loads(json.dumps(TASK))
    document["ContainerDefinitions"][0]["Environment"] = [
        {"Name": "DB_PASSWORD", "Value": "********"},
        {"Name": "API_URL", "Value": "http://api.tonys-chips.local:3000"},
        {"Name": "WEB_URL", "Value": "http://web:3001"},
    ]
    response = client.post(url(by_json, EDIT), {"mode": "json", "document": json.dumps(document)})
    assert response.status_code == 302
    assert saved(by_rows) == saved(by_json)
    assert saved(by_rows)["ContainerDefinitions"][0]["Environment"][0] == {
        "Name": "DB_PASSWORD",
        "Value": SECRET,
    }


def test_rows_added_with_the_add_row_button_are_saved(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    t = find(data, "/Tags").split("-")[1]
    data[f"rows-{t}-row"].append("41")  # what portal.js names a new row
    field(data, f"rows-{t}-41-0", "env")
    field(data, f"rows-{t}-41-1", "sandbox")
    assert client.post(url(cs, EDIT), data).status_code == 302
    assert saved(cs)["Tags"] == [{"Key": "team", "Value": "chips"}, {"Key": "env", "Value": "sandbox"}]


def test_it_never_shows_a_secret_in_the_rows(seat, cs):
    page = seat("editor").get(url(cs, EDIT))
    html = page.content.decode()
    assert SECRET not in html
    assert 'type="password" name="' in html and 'value="********"' in html


def test_bad_rows_save_nothing_and_say_why(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    port = find(data, "3001")
    field(data, port, "three thousand and one")
    field(data, find(data, "API_URL"), "NODE_ENV")  # a second NODE_ENV
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400
    html = page.content.decode()
    assert "Nothing was saved." in html
    assert "ContainerPort must be a whole number, not &#x27;three thousand and one&#x27;" in html
    assert "Name NODE_ENV is already row 1&#x27;s: one row per Name" in html
    assert 'value="three thousand and one"' in html  # the input comes back
    assert not cs.entries.exists()


def test_the_engine_s_errors_land_on_their_row(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    field(data, find(data, "team"), "t" * 200)
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400 and not cs.entries.exists()
    tags = next(table for table in page.context["form"].tables if table.name == "Tags")
    assert tags.rows[0].errors and tags.rows[0].errors[0].startswith("Key: ")
    assert "/Tags/" in page.content.decode()


def test_rows_whose_container_was_removed_from_the_json_have_nowhere_to_go(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    field(data, "p__ContainerDefinitions", json.dumps([{"Name": "api", "Image": "api:1"}]))
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400 and not cs.entries.exists()
    assert "/ContainerDefinitions/web is no longer in the properties" in page.content.decode()


def test_a_stale_form_is_refused(seat, cs, users):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    changesets.set_property(cs, users["editor"], "web-task", "/ContainerDefinitions/0/Name", "site")
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400
    assert "reload it" in page.content.decode()
    assert saved(cs)["ContainerDefinitions"][0]["Name"] == "site"


def test_a_cell_keeps_and_drops_its_subscription(seat, cs, users):
    changesets.set_property(
        cs,
        users["editor"],
        "web-task",
        "/ContainerDefinitions/0/Environment/2/Value",
        src("api-lb", "/resource_value/DNSName"),
    )
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    component = find(data, "api-lb")
    assert data[component.replace("-component", "-path")] == ["/resource_value/DNSName"]
    assert client.post(url(cs, EDIT), data).status_code == 302
    assert saved(cs)["ContainerDefinitions"][0]["Environment"][2]["Value"] == src(
        "api-lb", "/resource_value/DNSName"
    )
    data = form_of(client.get(url(cs, EDIT)))
    data[find(data, "api-lb").replace("-component", "-unsubscribe")] = ["on"]
    assert client.post(url(cs, EDIT), data).status_code == 302
    assert saved(cs)["ContainerDefinitions"][0]["Environment"][2] == {"Name": "API_URL"}


def test_outsiders_and_viewers_cannot_post_rows(seat, cs):
    data = form_of(seat("editor").get(url(cs, EDIT)))
    assert seat("outsider").post(url(cs, EDIT), data).status_code == 404
    assert not cs.entries.exists()


# --- Several subscriptions in one save ------------------------------------------------------------


def test_it_adds_several_subscriptions_in_one_save(seat, cs, users):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    data["new_target"] = [
        "/ContainerDefinitions/web/Environment/API_URL/Value",
        "/ContainerDefinitions/web/Environment/WEB_URL/Value",
    ]
    data["new_component"] = ["api-lb", "api-lb"]
    data["new_path"] = ["/resource_value/DNSName", "/resource_value/CanonicalHostedZoneID"]
    response = client.post(url(cs, EDIT), data)
    assert response.status_code == 302
    env = saved(cs)["ContainerDefinitions"][0]["Environment"]
    assert env[2] == {"Name": "API_URL", "Value": src("api-lb", "/resource_value/DNSName")}
    assert env[3] == {"Name": "WEB_URL", "Value": src("api-lb", "/resource_value/CanonicalHostedZoneID")}
    assert AuditEvent.objects.filter(verb="component.edited", target="web-task").count() == 1


def test_one_bad_new_subscription_saves_none(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    data["new_target"] = ["/ContainerDefinitions/web/Environment/API_URL/Value", "/Family/inside"]
    data["new_component"] = ["api-lb", "api-lb"]
    data["new_path"] = ["/resource_value/DNSName", ""]
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400 and not cs.entries.exists()
    subs = page.context["form"].new_subscriptions
    assert subs[0].errors == [] and subs[1].errors == ["choose a path to subscribe"]
    html = page.content.decode()
    assert 'value="/ContainerDefinitions/web/Environment/API_URL/Value"' in html  # both come back


def test_the_picker_offers_deep_targets_with_their_values(seat, cs):
    html = seat("editor").get(url(cs, EDIT)).content.decode()
    picker = html[html.index('<datalist id="property-paths">') :]
    picker = picker[: picker.index("</datalist>")]
    assert (
        '<option value="/ContainerDefinitions/web/Environment/API_URL/Value">http://internal-alb:3000</option>'
        in picker
    )
    assert (
        '<option value="/ContainerDefinitions/web/Environment/DB_PASSWORD/Value">********</option>' in picker
    )
    assert SECRET not in picker
    assert (
        'data-subscribe="/ContainerDefinitions/web/Environment/API_URL/Value"' in html
    )  # the cell's ⇐ button


# --- Descriptions and JSON ---------------------------------------------------------------------


def test_it_renders_the_registry_s_descriptions(seat, cs):
    html = seat("editor").get(url(cs, EDIT)).content.decode()
    head = html[html.index('class="type-description') :][:3000]
    assert "<code>family</code>" in head and "``family``" not in head
    assert '<a href="https://docs.aws.amazon.com/' in head and 'rel="nofollow noopener noreferrer"' in head
    assert "<details" in html and "About Family" in html


def test_json_errors_name_the_line_the_textarea_shows(seat, cs):
    text = '\n\n{\n  "Family": "web",\n  "Cpu": 256,,\n}'
    page = seat("editor").post(url(cs, EDIT), {"mode": "json", "document": text})
    assert page.status_code == 400
    assert "(line 5, column 14)" in page.context["form"].errors["document"][0]
    assert 'class="json-text"' in page.content.decode()
    assert not cs.entries.exists()


def test_an_engine_error_in_the_json_names_its_line(seat, cs):
    document = json.loads(json.dumps(TASK))
    document["ContainerDefinitions"][0]["Cpu"] = "lots"
    text = json.dumps(document, indent=2)
    line = text.split("\n").index(next(s for s in text.split("\n") if '"Cpu": "lots"' in s)) + 1
    page = seat("editor").post(url(cs, EDIT), {"mode": "json", "document": text})
    assert page.status_code == 400 and not cs.entries.exists()
    error = page.context["form"].errors["document"][0]
    assert error.startswith(f"/ContainerDefinitions/web/Cpu (line {line}): ")


def test_an_engine_error_in_a_json_field_names_its_line(seat, cs):
    client = seat("editor")
    data = form_of(client.get(url(cs, EDIT)))
    field(
        data,
        "p__ContainerDefinitions",
        '[\n  {\n    "Name": "web",\n    "Image": "web:1",\n    "Cpu": "lots"\n  }\n]',
    )
    page = client.post(url(cs, EDIT), data)
    assert page.status_code == 400
    assert page.context["form"].errors["p__ContainerDefinitions"][0].startswith("/web/Cpu (line 5): ")


def test_a_long_environment_goes_through_as_rows(seat, workspace, users):
    environment = [{"Name": f"VAR_{n}", "Value": f"value {n}"} for n in range(400)]
    task = {
        "Family": "big",
        "ContainerDefinitions": [{"Name": "big", "Image": "big:1", "Environment": environment}],
    }
    head(workspace, users["editor"], {"big-task": (TD, task)})
    cs = changesets.create_change_set(workspace, users["editor"], "big")
    client = seat("editor")
    edit = url(cs, "components/big-task/edit/")
    data = form_of(client.get(edit))
    assert sum(len(v) for v in data.values()) > 1000  # past Django's default field limit
    field(data, find(data, "value 399"), "changed")
    assert client.post(edit, data).status_code == 302
    assert cs.entries.get(name="big-task").properties["ContainerDefinitions"][0]["Environment"][399] == {
        "Name": "VAR_399",
        "Value": "changed",
    }
