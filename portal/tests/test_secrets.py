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


def test_it_masks_every_password_in_urls_and_leaves_the_rest_alone():
    text = (
        "tried postgres://app:pa55word@db:5432/shop then redis+tls://cache:s3cr3t@redis:6379 "
        "and 9x-amqp://u:p4ss:with:colons@mq ; no userinfo: https://example.com/a:b@c "
        "mailto:someone@example.com https://host:8080/path"
    )
    assert mask_text(text) == (
        f"tried postgres://app:{MASK}@db:5432/shop then redis+tls://cache:{MASK}@redis:6379 "
        f"and 9x-amqp://u:{MASK}@mq ; no userinfo: https://example.com/a:b@c "
        "mailto:someone@example.com https://host:8080/path"
    )
    assert mask({"Url": ["mysql://root:toor@db"]}) == {"Url": [f"mysql://root:{MASK}@db"]}


def test_it_masks_several_megabytes_in_well_under_a_second():
    """Masking is linear: no input makes its patterns backtrack (a 20,000-character string
    used to take seconds). CPU time is measured, so that other processes on a busy machine
    do not count."""
    import time

    fragments = ("a://b:", "c@", "//", ":", "@", "x", "PASSWORD", "=", "https://u:", "pw")
    hostile = "".join(fragments[i * 7 % len(fragments)] for i in range(600_000))
    hostile += "a://u:" * 200_000 + "a" * 300_000 + "TOKEN" * 60_000 + " postgres://app:pa55word@db"
    assert len(hostile) > 3_000_000
    deep = leaf = {}
    for _ in range(300):
        leaf["Password"], leaf["Url"] = "hunter22", "postgres://app:pa55word@db"
        leaf["List"] = ["x:" * 1000 + "@", {"Name": "DB_PASSWORD", "Value": "s3cret"}]
        leaf["Next"] = leaf = {}
    leaf["Url"] = "postgres://last:" * 20_000

    start = time.process_time()
    masked_text, masked_doc = mask_text(hostile), mask(deep)
    elapsed = time.process_time() - start

    assert elapsed < 1, f"masking took {elapsed:.2f} s"
    assert masked_text.endswith(f" postgres://app:{MASK}@db")
    node = masked_doc
    for _ in range(300):
        assert node["Password"] == MASK and node["Url"] == f"postgres://app:{MASK}@db"
        assert node["List"][1]["Value"] == MASK
        node = node["Next"]
    assert node["Url"] == "postgres://last:" * 20_000
