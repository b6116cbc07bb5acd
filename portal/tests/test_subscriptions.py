"""The one definition of a subscription, and the same answer from every module that asks."""

import pytest

from portal import graph, jsondiff, schemas, string_template, subscriptions
from portal.errors import ValidationError
from portal.spec import parse_spec

GOOD = [
    {"$source": {"component": "vpc", "path": "/resource_value/VpcId"}},
    {"$source": {"component": "vpc", "path": "/domain"}},
    {"$source": {"component": "sd", "path": "/resource_value/Outputs/ServiceDiscoveryArn/OutputValue"}},
    {"$source": {"component": "vpc", "path": "/si/name"}},
    {"$source": {"component": "vpc", "path": "/domain/Tags/0/a~1b"}},
]

BAD = [
    ({"$source": {"component": "vpc", "path": "/domain/CidrBlock"}, "x": 1}, "holds only $source; remove x"),
    ({"$source": "vpc"}, "must read"),
    ({"$source": None}, "must read"),
    ({"$source": {"component": "vpc"}}, "must read"),
    ({"$source": {"component": "vpc", "path": "/domain/X", "region": "eu-west-1"}}, "must read"),
    ({"$source": {"component": "", "path": "/domain/X"}}, "component must be a name"),
    ({"$source": {"component": 7, "path": "/domain/X"}}, "component must be a name"),
    ({"$source": {"component": "vpc", "path": "domain/X"}}, "not a JSON pointer"),
    ({"$source": {"component": "vpc", "path": 3}}, "not a JSON pointer"),
    ({"$source": {"component": "vpc", "path": "/domain/a~2"}}, "not a valid JSON pointer"),
    (
        {"$source": {"component": "vpc", "path": "/outputs/VpcId"}},
        "must start with /domain, /resource_value or /si",
    ),
    ({"$source": {"component": "vpc", "path": "/"}}, "must start with /domain, /resource_value or /si"),
]


@pytest.mark.parametrize("value", GOOD)
def test_a_well_formed_subscription_is_accepted(value):
    assert subscriptions.is_subscription(value)
    assert subscriptions.shape_error(value) is None


@pytest.mark.parametrize("value, said", BAD)
def test_a_malformed_subscription_is_still_a_subscription_and_says_why(value, said):
    assert subscriptions.is_subscription(value)
    assert said in subscriptions.shape_error(value)


@pytest.mark.parametrize("value", [{}, {"source": 1}, {"Value": "$source"}, ["$source"], "$source", None])
def test_other_values_are_not_subscriptions(value):
    assert not subscriptions.is_subscription(value)


def test_find_lists_every_subscription_once_with_its_pointer_and_never_looks_inside():
    outer = {"$source": {"component": "a", "path": "/domain"}, "inner": {"$source": {}}}
    document = {"A/B": [1, GOOD[0]], "C": {"D": outer}}
    assert subscriptions.find(document) == [("/A~1B/1", GOOD[0]), ("/C/D", outer)]
    assert subscriptions.find(GOOD[0]) == [("", GOOD[0])]


def _engine_error(value):
    (source,) = graph.find_sources({"VpcId": value})
    assert source.target == "/VpcId"
    return graph.source_error(source)


def _schema_errors(value):
    properties = {"GroupDescription": "web", "VpcId": value}
    return [
        e for e in schemas.validate_properties("AWS::EC2::SecurityGroup", properties) if e["path"] == "/VpcId"
    ]


def _spec_error(value):
    data = {
        "components": [{"name": "sg", "schema": "AWS::EC2::SecurityGroup", "properties": {"VpcId": value}}]
    }
    try:
        parse_spec(data)
    except ValidationError as exc:
        return exc.message
    return None


@pytest.mark.parametrize("value", GOOD)
def test_every_caller_accepts_a_well_formed_subscription(value):
    assert _engine_error(value) is None
    assert _schema_errors(value) == []
    assert _spec_error(value) is None


@pytest.mark.parametrize("value, said", BAD)
def test_every_caller_refuses_a_malformed_subscription_with_the_same_words(value, said):
    message = subscriptions.shape_error(value)
    assert _engine_error(value) == message
    assert _schema_errors(value) == [{"path": "/VpcId", "message": message}]
    assert _spec_error(value) == f'spec: component #1 ("sg"): properties/VpcId: {message}'


@pytest.mark.parametrize("value", [GOOD[0], BAD[0][0]])
def test_a_subscription_is_one_value_to_diffs_and_templates(value):
    other = {"$source": {"component": "subnet", "path": "/domain/CidrBlock"}}
    assert jsondiff.changes({"VpcId": value}, {"VpcId": other}) == [
        jsondiff.Change("/VpcId", "modified", value, other)
    ]
    with pytest.raises(ValidationError, match="variable Vpc is a subscription that has not resolved yet"):
        string_template.render("{{ Vpc }}", {"Vpc": value})


def test_the_engine_indexes_only_well_formed_subscriptions():
    properties = {"Good": GOOD[0], "Bad": BAD[1][0]}
    assert [(s.target, s.component, s.path) for s in graph.find_sources(properties) if s.error is None] == [
        ("/Good", "vpc", "/resource_value/VpcId")
    ]
