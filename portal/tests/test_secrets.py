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
