from portal.secrets import MASK, mask, mask_text


def test_it_masks_env_vars_named_like_secrets():
    env = [{"Name": "SESSION_SECRET", "Value": "s3cr3t"}, {"Name": "API_URL", "Value": "http://api:3000"}]
    assert mask(env) == [
        {"Name": "SESSION_SECRET", "Value": MASK},
        {"Name": "API_URL", "Value": "http://api:3000"},
    ]


def test_it_masks_keys_named_like_secrets_and_write_only_paths():
    props = {"MasterUserPassword": "hunter22", "DBName": "shop", "Nested": [{"Token": "x"}]}
    out = mask(props, write_only=["/DBName"])
    assert out == {"MasterUserPassword": MASK, "DBName": MASK, "Nested": [{"Token": MASK}]}


def test_it_keeps_subscriptions_visible():
    sub = {
        "Value": {"$source": {"component": "db", "path": "/resource_value/Endpoint"}},
        "Name": "DB_PASSWORD",
    }
    assert mask(sub)["Value"] == sub["Value"]


def test_it_masks_passwords_in_urls_and_text():
    assert mask("postgres://app:pa55word@db:5432/shop") == f"postgres://app:{MASK}@db:5432/shop"
    assert "hunter22" not in mask_text("failed: DB_PASSWORD=hunter22 rejected")


def test_it_masks_secrets_in_diffs_and_plans_when_only_the_secret_changed(workspace, users):
    from portal import changesets
    from portal.plan import plan_actions

    from .factories import head

    bob = users["editor"]
    env = [{"Name": "SESSION_SECRET", "Value": "old-s3cret"}, {"Name": "PORT", "Value": "3000"}]
    task = {"Family": "web", "ContainerDefinitions": [{"Name": "web", "Image": "web:1", "Environment": env}]}
    head(
        workspace,
        bob,
        {
            "db": (
                "AWS::RDS::DBInstance",
                {
                    "DBInstanceClass": "db.t3.micro",
                    "Engine": "postgres",
                    "MasterUsername": "app",
                    "MasterUserPassword": "old-hunter2",
                },
            ),
            "web-task": ("AWS::ECS::TaskDefinition", task),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "rotate")
    changesets.set_property(cs, bob, "db", "/MasterUserPassword", "new-hunter2")
    changesets.set_property(cs, bob, "web-task", "/ContainerDefinitions/0/Environment/0/Value", "new-s3cret")

    text = str([d.as_dict() for d in changesets.diff(cs)]) + str(plan_actions(cs).as_dict())

    for secret in ("old-hunter2", "new-hunter2", "old-s3cret", "new-s3cret"):
        assert secret not in text
    assert "3000" in text or "MasterUserPassword" in text


def test_it_shows_a_subscription_even_at_a_write_only_path():
    from portal.secrets import mask_at

    sub = {"$source": {"component": "vpc", "path": "/resource_value/VpcId"}}
    assert mask_at(sub, "/Vpc", write_only=["/Vpc"]) == sub
    assert mask_at("vpc-123", "/Vpc", write_only=["/Vpc"]) == MASK
