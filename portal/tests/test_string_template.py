import json

import pytest

from portal.errors import ValidationError
from portal.string_template import PLACEHOLDER, placeholders, render, render_properties

# The seed's deployment pipeline definition, kept as a Portal::StringTemplate component.
STEP_FUNCTIONS_DEFINITION = """{
  "StartAt": "DeployServices",
  "States": {
    "DeployServices": {
      "Type": "Parallel",
      "Branches": [
        {"StartAt": "UpdateAPIService", "States": {"UpdateAPIService": {
          "Type": "Task",
          "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
          "Parameters": {"Cluster": "{{ Cluster }}", "Service": "{{ ApiService }}", "ForceNewDeployment": true},
          "End": true}}},
        {"StartAt": "UpdateWebService", "States": {"UpdateWebService": {
          "Type": "Task",
          "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
          "Parameters": {"Cluster": "{{Cluster}}", "Service": "{{ WebService }}", "ForceNewDeployment": true},
          "End": true}}}
      ],
      "End": true
    }
  }
}"""


def test_it_finds_placeholders_once_in_order_of_appearance():
    assert placeholders(STEP_FUNCTIONS_DEFINITION) == ["Cluster", "ApiService", "WebService"]
    assert placeholders("{{b}} {{ a }} {{  b  }}") == ["b", "a"]
    assert placeholders("no placeholders") == []
    assert placeholders(None) == []


def test_it_only_takes_names_as_placeholders():
    text = "{{ 1abc }} { Name } {{ a-b }} {{ os.system }} {% for x %} {{ _ok }}"
    assert placeholders(text) == ["_ok"]
    assert PLACEHOLDER.fullmatch("{{\tName_2 }}")


def test_it_renders_the_seed_step_functions_definition():
    rendered = render(
        STEP_FUNCTIONS_DEFINITION,
        {
            "Cluster": "tonys-chips-sandbox",
            "ApiService": "sandbox-tonys-chips-api",
            "WebService": "sandbox-tonys-chips-web",
        },
    )
    definition = json.loads(rendered)
    api, web = (b["States"] for b in definition["States"]["DeployServices"]["Branches"])
    assert api["UpdateAPIService"]["Parameters"] == {
        "Cluster": "tonys-chips-sandbox",
        "Service": "sandbox-tonys-chips-api",
        "ForceNewDeployment": True,
    }
    assert web["UpdateWebService"]["Parameters"]["Service"] == "sandbox-tonys-chips-web"
    assert "DesiredCount" not in rendered


def test_it_inserts_non_string_values_as_compact_json():
    assert render("n={{ n }} ok={{ ok }} none={{ none }}", {"n": 2, "ok": True, "none": None}) == (
        "n=2 ok=true none=null"
    )
    assert render('"Subnets": {{ Subnets }}', {"Subnets": ["subnet-1", "subnet-2"]}) == (
        '"Subnets": ["subnet-1","subnet-2"]'
    )
    assert render("{{ cfg }}", {"cfg": {"a": 1, "b": "é"}}) == '{"a":1,"b":"é"}'


def test_it_raises_for_an_unknown_placeholder():
    with pytest.raises(ValidationError) as caught:
        render("{{ Cluster }}/{{ ApiService }}", {"ApiService": "api", "WebService": "web"})
    assert caught.value.message == "unknown placeholder {{ Cluster }}; Variables has: ApiService, WebService"
    assert caught.value.errors[0]["path"] == "/Template"


def test_it_raises_for_a_variable_whose_subscription_has_not_resolved():
    source = {"$source": {"component": "cluster", "path": "/domain/ClusterName"}}
    with pytest.raises(ValidationError, match="Cluster is a subscription that has not resolved yet"):
        render("{{ Cluster }}", {"Cluster": source})


def test_it_does_not_substitute_inside_substituted_values():
    assert render("{{ a }}", {"a": "{{ b }}", "b": "nope"}) == "{{ b }}"


def test_it_runs_no_code_and_leaves_other_template_syntax_alone():
    text = "{{ __import__('os').system('x') }} {% if x %} {{ name|upper }} {{ name }}"
    assert (
        render(text, {"name": "web"}) == "{{ __import__('os').system('x') }} {% if x %} {{ name|upper }} web"
    )


def test_it_computes_the_rendered_value_of_a_component():
    props = {"Template": "svc={{ Service }}", "Variables": {"Service": "api"}}
    assert render_properties(props) == {"Value": "svc=api"}
    assert render_properties({"Template": "plain"}) == {"Value": "plain"}
