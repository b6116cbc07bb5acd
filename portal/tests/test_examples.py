"""The Tony's Chips example (examples/tonys-chips): every file loads, every subscription
points at a component that exists at that point of the story, every property is valid
for its type's schema, and the seed's facts are where the seed says they are.

No database: these are spec files checked as data.
"""

import json
from pathlib import Path

import pytest

from portal import schemas, string_template
from portal.secrets import is_secret_name
from portal.spec import dump_spec, load_spec, parse_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tonys-chips"
WORKSPACE = EXAMPLE / "workspace.yaml"

# The seed's change sets, in the seed's order (service-discovery-build-log.md).
SEED_CHANGE_SETS = [
    "update-smoke-test-to-use-e2e",
    "migrate-to-service-discovery",
    "recreate-api-service-with-service-discovery",
    "fix-smoke-test-urls",
    "scale-up-api-and-update-web-service",
    "fix-health-checks-use-nodejs",
    "fix-step-functions-graceful-deployment",
]

# Component names the seed itself uses.
SEED_NAMES = [
    "sandbox-tonys-chips-api-service",
    "sandbox-tonys-chips-api-task",
    "sandbox-tonys-chips-web-task",
    "sandbox-tonys-chips-smoke-test-task",
    "sandbox-tonys-chips-api-sg-v2",
    "sandbox-tonys-chips-alb",
    "sandbox-tonys-chips-api-listener-rule",
    "sandbox-tonys-chips-api-tg",
    "sandbox-step-functions-definition",
]

ROOTS = ("domain", "resource_value", "si")


def change_set_files():
    return sorted(
        p for p in EXAMPLE.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.name[:2].isdigit()
    )


def example_files():
    return [WORKSPACE, *change_set_files()]


def sources(value, at=""):
    """(pointer inside the properties, component, path) of every subscription."""
    if isinstance(value, dict):
        if set(value) == {"$source"}:
            yield at, value["$source"]["component"], value["$source"]["path"]
            return
        for key, item in value.items():
            yield from sources(item, f"{at}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from sources(item, f"{at}/{index}")


def source(component, path):
    return {"$source": {"component": component, "path": path}}


def states():
    """The model after the workspace and after each change set: [(file, {name: ComponentSpec})]."""
    model = {c.name: c for c in load_spec(WORKSPACE).components}
    out = [(WORKSPACE, dict(model))]
    for path in change_set_files():
        for component in load_spec(path).components:
            if component.delete:
                model.pop(component.name, None)
            elif component.properties is None:
                continue  # replace only: same properties, new resource
            else:
                model[component.name] = component
        out.append((path, dict(model)))
    return out


def final_model():
    return states()[-1][1]


def container(properties, index=0):
    return properties["ContainerDefinitions"][index]


def env(properties):
    return {e["Name"]: e["Value"] for e in container(properties).get("Environment", [])}


def render(properties):
    """Render a Portal::StringTemplate with every variable replaced by a stand-in text."""
    variables = {name: f"<{name}>" for name in properties["Variables"]}
    return json.loads(string_template.render(properties["Template"], variables))


# --- Files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_loads_and_round_trips(path):
    spec = load_spec(path)
    assert spec.components
    assert parse_spec(dump_spec(spec)) == spec


def test_change_sets_are_the_seeds_in_the_seeds_order():
    files = change_set_files()
    assert [p.name[:2] for p in files] == [f"{i:02d}" for i in range(1, len(SEED_CHANGE_SETS) + 1)]
    names = [load_spec(p).change_set["name"] for p in files]
    assert names == SEED_CHANGE_SETS
    for path, name in zip(files, names, strict=True):
        assert path.stem[3:] == name


@pytest.mark.parametrize("path", change_set_files(), ids=lambda p: p.name)
def test_each_change_set_says_its_problem_and_solution(path):
    spec = load_spec(path)
    assert spec.workspace is None
    assert spec.change_set["problem"].strip()
    assert spec.change_set["solution"].strip()


def test_the_workspace_spec_describes_a_workspace():
    spec = load_spec(WORKSPACE)
    assert spec.change_set is None
    assert spec.workspace == {
        "name": "Tony's Chips sandbox",
        "slug": "tonys-chips",
        "region": "us-east-1",
        "approvals_required": 1,
    }
    for component in spec.components:
        assert component.schema and component.properties is not None, component.name
        assert not component.delete and not component.replace, component.name
    names = {c.name for c in spec.components}
    assert set(SEED_NAMES) <= names


def test_readme_describes_every_file_in_order():
    readme = (EXAMPLE / "README.md").read_text()
    positions = [readme.find(f"`{p.name}`") for p in example_files()]
    assert all(pos >= 0 for pos in positions), positions
    assert positions == sorted(positions)


# --- Subscriptions --------------------------------------------------------------------------


def test_every_subscription_points_at_a_component_that_exists_at_that_point():
    """A $source names a component of the workspace, of that change set, or of an earlier
    one, and not one deleted by then; and after every change set the model has no
    dangling subscription."""
    model = {}
    for path, _ in states():
        spec = load_spec(path)
        deleted = {c.name for c in spec.components if c.delete}
        scope = (set(model) | {c.name for c in spec.components if c.schema}) - deleted
        for component in spec.components:
            if component.replace and component.properties is None:
                assert component.name in model, f"{path.name}: replaces unknown {component.name}"
            if component.delete:
                assert component.name in model, f"{path.name}: deletes unknown {component.name}"
            for at, name, _ in sources(component.properties or {}):
                assert name in scope, f"{path.name}: {component.name}{at} subscribes to unknown {name}"
        for component in spec.components:
            if component.delete:
                model.pop(component.name, None)
            elif component.properties is not None:
                model[component.name] = component
        for component in model.values():
            for at, name, _ in sources(component.properties):
                assert name in model, f"after {path.name}: {component.name}{at} still subscribes to {name}"


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_subscription_path_exists_in_the_producers_schema(path):
    model = {}
    for state_path, state in states():
        model.update(state)
        if state_path == path:
            break
    for component in load_spec(path).components:
        for at, name, pointer in sources(component.properties or {}):
            root, _, rest = pointer[1:].partition("/")
            assert root in ROOTS, f"{component.name}{at}: {pointer}"
            if root == "si":
                continue
            producer = schemas.get_schema(model[name].schema)
            assert producer.subschema("/" + rest) is not None, (
                f"{path.name}: {component.name}{at} reads {pointer}, which {model[name].schema} does not have"
            )


# --- Schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_property_is_valid_for_its_schema(path):
    problems = []
    for component in load_spec(path).components:
        if component.properties is None:
            continue
        for error in schemas.validate_properties(component.schema, component.properties):
            problems.append(f"{component.name}{error['path']}: {error['message']}")
    assert problems == []


def test_no_secret_is_written_in_the_files():
    for path in example_files():
        for component in load_spec(path).components:
            props = component.properties or {}
            assert "MasterUserPassword" not in props, component.name
            for definition in props.get("ContainerDefinitions", []):
                for item in definition.get("Environment", []):
                    assert not is_secret_name(item["Name"]), f"{component.name}: {item['Name']}"
    db = final_model()["sandbox-tonys-chips-db"].properties
    assert db["ManageMasterUserPassword"] is True
    assert db["EnableIAMDatabaseAuthentication"] is True


def test_what_moto_needs_is_there_in_every_state():
    """LOCAL-AWS.md: container-level cpu/memory, security groups in awsvpcConfiguration,
    DNS hostnames on."""
    for path, model in states():
        for component in model.values():
            props = component.properties
            if component.schema == "AWS::ECS::TaskDefinition":
                assert props["NetworkMode"] == "awsvpc"
                assert props["RequiresCompatibilities"] == ["FARGATE"]
                for definition in props["ContainerDefinitions"]:
                    assert definition["Cpu"] and definition["Memory"], f"{path.name}: {component.name}"
                    assert definition["LogConfiguration"]["LogDriver"] == "awslogs"
            if component.schema == "AWS::ECS::Service":
                vpc_config = props["NetworkConfiguration"]["AwsvpcConfiguration"]
                assert vpc_config["SecurityGroups"] and vpc_config["Subnets"], (
                    f"{path.name}: {component.name}"
                )
                assert props["DeploymentConfiguration"] == {
                    "MaximumPercent": 200,
                    "MinimumHealthyPercent": 50,
                }
            if component.schema == "AWS::EC2::VPC":
                assert props["EnableDnsHostnames"] is True and props["EnableDnsSupport"] is True


# --- The seed's story -------------------------------------------------------------------------

WGET = "wget"
NODE_CHECK = (
    "node -e \"require('http').get('http://localhost:{port}/health', (res) => "
    "process.exit(res.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))\""
)


def test_before_the_migration_the_web_calls_the_api_through_the_alb():
    ws = {c.name: c for c in load_spec(WORKSPACE).components}
    assert env(ws["sandbox-tonys-chips-web-task"].properties)["API_URL"] == "http://internal-alb:3000"
    rule = ws["sandbox-tonys-chips-api-listener-rule"].properties
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    assert rule["Actions"][0]["TargetGroupArn"] == source(
        "sandbox-tonys-chips-api-tg", "/resource_value/TargetGroupArn"
    )
    assert ws["sandbox-tonys-chips-api-tg"].properties["Port"] == 3000
    assert ws["sandbox-tonys-chips-web-tg"].properties["Port"] == 3001
    api = ws["sandbox-tonys-chips-api-service"].properties
    assert api["LoadBalancers"][0]["TargetGroupArn"] == source(
        "sandbox-tonys-chips-api-tg", "/resource_value/TargetGroupArn"
    )
    assert api["DesiredCount"] == 2
    assert "ServiceRegistries" not in api
    for task in ("sandbox-tonys-chips-api-task", "sandbox-tonys-chips-web-task"):
        assert WGET in container(ws[task].properties)["HealthCheck"]["Command"][1]


def test_migrate_to_service_discovery():
    spec = load_spec(EXAMPLE / "02-migrate-to-service-discovery.yaml")
    namespace = spec.component("sandbox-tonys-chips-private-dns-namespace")
    assert namespace.schema == "AWS::ServiceDiscovery::PrivateDnsNamespace"
    assert namespace.properties["Name"] == "tonys-chips.local"
    assert namespace.properties["Vpc"] == source("sandbox-tonys-chips-vpc", "/resource_value/VpcId")
    discovery = spec.component("sandbox-tonys-chips-api-service-discovery")
    assert discovery.schema == "AWS::ServiceDiscovery::Service"
    assert discovery.properties["Name"] == "api"
    assert discovery.properties["NamespaceId"] == source(
        "sandbox-tonys-chips-private-dns-namespace", "/resource_value/Id"
    )
    assert discovery.properties["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 60}]
    assert discovery.properties["HealthCheckCustomConfig"] == {"FailureThreshold": 1}

    api = spec.component("sandbox-tonys-chips-api-service").properties
    assert api["ServiceRegistries"][0]["RegistryArn"] == source(
        "sandbox-tonys-chips-api-service-discovery", "/resource_value/Arn"
    )
    assert api["LoadBalancers"] == []
    assert env(spec.component("sandbox-tonys-chips-web-task").properties)["API_URL"] == (
        "http://api.tonys-chips.local:3000"
    )
    ingress = spec.component("sandbox-tonys-chips-api-sg-v2").properties["SecurityGroupIngress"]
    own = source("sandbox-tonys-chips-api-sg-v2", "/resource_value/GroupId")
    assert any(
        rule["SourceSecurityGroupId"] == own and rule["FromPort"] == rule["ToPort"] == 3000
        for rule in ingress
    )
    deleted = {c.name for c in spec.components if c.delete}
    assert deleted == {"sandbox-tonys-chips-api-listener-rule", "sandbox-tonys-chips-api-tg"}


def test_recreate_api_service_only_asks_for_a_replacement():
    spec = load_spec(EXAMPLE / "03-recreate-api-service-with-service-discovery.yaml")
    [component] = spec.components
    assert component.name == "sandbox-tonys-chips-api-service"
    assert component.replace and component.properties is None and not component.delete


def test_smoke_test_runs_e2e_against_service_discovery_and_the_alb():
    first = load_spec(EXAMPLE / "01-update-smoke-test-to-use-e2e.yaml")
    task = first.component("sandbox-tonys-chips-smoke-test-task").properties
    assert container(task)["Command"] == ["npm", "run", "test:e2e"]
    fixed = load_spec(EXAMPLE / "04-fix-smoke-test-urls.yaml")
    task = fixed.component("sandbox-tonys-chips-smoke-test-task").properties
    assert container(task)["Command"] == ["npm", "run", "test:e2e"]
    assert env(task) == {
        "API_URL": "http://api.tonys-chips.local:3000",
        "WEB_URL": source("sandbox-tonys-chips-alb", "/resource_value/DNSName"),
    }


def test_health_checks_use_nodejs():
    spec = load_spec(EXAMPLE / "06-fix-health-checks-use-nodejs.yaml")
    for task, port in (("sandbox-tonys-chips-api-task", 3000), ("sandbox-tonys-chips-web-task", 3001)):
        check = container(spec.component(task).properties)["HealthCheck"]
        assert check == {
            "Command": ["CMD-SHELL", NODE_CHECK.format(port=port)],
            "Interval": 30,
            "Retries": 3,
            "StartPeriod": 60,
            "Timeout": 5,
        }
    # 06 keeps what 02 did to the web task.
    assert env(spec.component("sandbox-tonys-chips-web-task").properties)["API_URL"] == (
        "http://api.tonys-chips.local:3000"
    )


def test_step_functions_drops_the_hardcoded_desired_count():
    ws = {c.name: c for c in load_spec(WORKSPACE).components}
    fixed = load_spec(EXAMPLE / "07-fix-step-functions-graceful-deployment.yaml")
    before = ws["sandbox-step-functions-definition"].properties
    after = fixed.component("sandbox-step-functions-definition").properties
    for props, desired in ((before, 2), (after, None)):
        assert set(string_template.placeholders(props["Template"])) == set(props["Variables"])
        definition = render(props)
        branches = definition["States"]["DeployServices"]["Branches"]
        updates = [b["States"][b["StartAt"]]["Parameters"] for b in branches]
        assert [b["StartAt"] for b in branches] == ["UpdateAPIService", "UpdateWebService"]
        for parameters in updates:
            assert parameters.get("DesiredCount") == desired
            assert parameters["ForceNewDeployment"] is True
        assert definition["StartAt"] == "RunMigrations"
        assert definition["States"]["WaitForHealthy"] == {
            "Type": "Wait",
            "Seconds": 60,
            "Next": "RunSmokeTests",
        }
    assert before["Variables"] == after["Variables"]
    machine = ws["sandbox-tonys-chips-deploy-state-machine"].properties
    assert machine["DefinitionString"] == source(
        "sandbox-step-functions-definition", "/domain/Rendered/Value"
    )


def test_after_the_story_the_services_are_wired_as_the_seed_ends():
    model = final_model()
    assert "sandbox-tonys-chips-api-tg" not in model
    assert "sandbox-tonys-chips-api-listener-rule" not in model
    api = model["sandbox-tonys-chips-api-service"].properties
    assert api["LoadBalancers"] == [] and api["ServiceRegistries"]
    web = model["sandbox-tonys-chips-web-service"].properties
    assert web["LoadBalancers"][0]["TargetGroupArn"] == source(
        "sandbox-tonys-chips-web-tg", "/resource_value/TargetGroupArn"
    )
