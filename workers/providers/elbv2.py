"""Elastic Load Balancing v2 providers: load balancer, target group, listener, listener rule.

Crash safety: every create first looks for what an earlier attempt made — a load balancer
or target group by its name (taken from the properties, or derived from the token), a
listener by its port on the load balancer, a rule by its priority on the listener — and
adopts it when it carries this component's `portal:component-id` tag (set in the create
call itself). Something else under that name/port/priority is an error, as on AWS.
"""

from .base import PORTAL_TAG, Observed, Provider, ProviderError, ResourceMissing, register
from .common import (
    aws_errors,
    aws_tags,
    changed,
    delete_retrying,
    derived_name,
    drop_none,
    gone_is_success,
    input_shape,
    json_safe,
    reject_immutable,
    reject_unsupported,
    tag_changes,
    tag_value,
    to_api,
    visible_tags,
    wait_until,
)

LB_MISSING = ("LoadBalancerNotFound",)
TG_MISSING = ("TargetGroupNotFound",)
LISTENER_MISSING = ("ListenerNotFound",)
RULE_MISSING = ("RuleNotFound",)
NAME_MAX = 32  # load balancer and target group names


def _api(client, operation, values):
    """Properties whose CloudFormation names are the API's, typed by the API's shape."""
    return to_api(drop_none(values), input_shape(client, operation))


def _tags_of(elb, arn):
    with aws_errors():
        found = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return found[0].get("Tags", []) if found else []


def _sync_tags(elb, arn, desired):
    to_set, to_remove = tag_changes(visible_tags(_tags_of(elb, arn)), desired)
    with aws_errors():
        if to_set:
            elb.add_tags(ResourceArns=[arn], Tags=to_set)
        if to_remove:
            elb.remove_tags(ResourceArns=[arn], TagKeys=to_remove)


def _adopt_or_refuse(elb, arn, token, what):
    """`arn` already holds the name/port/priority we want: ours (same token) or a conflict."""
    if tag_value(_tags_of(elb, arn), PORTAL_TAG) == str(token):
        return arn
    raise ProviderError(f"{what} already exists and was not created for this component", code="AlreadyExists")


def _attribute_value(value):
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _attributes(items):
    """`[{Key, Value}]` with string values, as the attribute APIs take and return them."""
    return [{"Key": str(a["Key"]), "Value": _attribute_value(a["Value"])} for a in items or []]


def _changed_attributes(desired, observed):
    current = {a["Key"]: a["Value"] for a in observed}
    return [a for a in _attributes(desired) if current.get(a["Key"]) != a["Value"]]


def _lb_full_name(arn):
    """`app/name/id` from `arn:...:loadbalancer/app/name/id` (CloudFormation's LoadBalancerFullName)."""
    return arn.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in arn else None


def _tg_full_name(arn):
    """`targetgroup/name/id` from `arn:...:targetgroup/name/id` (CloudFormation's TargetGroupFullName)."""
    return "targetgroup/" + arn.split(":targetgroup/", 1)[1] if ":targetgroup/" in arn else None


# --- Load balancer ----------------------------------------------------------------------


@register
class LoadBalancerProvider(Provider):
    type_name = "AWS::ElasticLoadBalancingV2::LoadBalancer"
    create_only = ("Name", "Type", "Scheme")
    handled = (
        "Name",
        "Subnets",
        "SubnetMappings",
        "SecurityGroups",
        "Scheme",
        "Type",
        "IpAddressType",
        "EnablePrefixForIpv6SourceNat",
        "LoadBalancerAttributes",
        "Tags",
    )
    read_only = (
        "LoadBalancerArn",
        "DNSName",
        "CanonicalHostedZoneID",
        "LoadBalancerName",
        "LoadBalancerFullName",
    )

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        elb = self.clients("elbv2")
        name = properties.get("Name") or derived_name(token, max_len=NAME_MAX)
        existing = self._by_name(name)
        if existing:
            arn = _adopt_or_refuse(elb, existing["LoadBalancerArn"], token, f"Load balancer {name}")
        else:
            kwargs = _api(
                elb,
                "CreateLoadBalancer",
                {
                    "Name": name,
                    "Subnets": properties.get("Subnets"),
                    "SubnetMappings": properties.get("SubnetMappings"),
                    "SecurityGroups": properties.get("SecurityGroups"),
                    "Scheme": properties.get("Scheme"),
                    "Type": properties.get("Type"),
                    "IpAddressType": properties.get("IpAddressType"),
                    "EnablePrefixForIpv6SourceNat": properties.get("EnablePrefixForIpv6SourceNat"),
                    "Tags": aws_tags(properties.get("Tags"), token),
                },
            )
            with aws_errors():
                arn = elb.create_load_balancer(**kwargs)["LoadBalancers"][0]["LoadBalancerArn"]
        self._wait_active(arn)
        self._sync_attributes(arn, properties.get("LoadBalancerAttributes"))
        return self.read(arn)

    def _by_name(self, name):
        try:
            return self._describe(names=[name])
        except ResourceMissing:
            return None

    def _describe(self, arn=None, names=None):
        kwargs = {"Names": names} if names else {"LoadBalancerArns": [arn]}
        with aws_errors(missing=LB_MISSING):
            found = self.clients("elbv2").describe_load_balancers(**kwargs)["LoadBalancers"]
        if not found:
            raise ResourceMissing(f"Load balancer {arn or names} does not exist")
        return found[0]

    def _wait_active(self, arn):
        def check():
            state = self._describe(arn).get("State") or {}
            if state.get("Code") == "failed":
                raise ProviderError(state.get("Reason") or "Load balancer provisioning failed", code="Failed")
            return state.get("Code") in (None, "active", "active_impaired")

        wait_until(check, what=f"load balancer {arn} to become active")

    def _sync_attributes(self, arn, desired):
        if not desired:
            return
        elb = self.clients("elbv2")
        with aws_errors():
            observed = elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
            todo = _changed_attributes(desired, observed)
            if todo:
                elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=todo)

    def read(self, physical_id, properties=None):
        elb = self.clients("elbv2")
        lb = self._describe(physical_id)
        with aws_errors(missing=LB_MISSING):
            attributes = elb.describe_load_balancer_attributes(LoadBalancerArn=physical_id)["Attributes"]
        zones = lb.get("AvailabilityZones") or []
        mappings = []
        for zone in zones:
            addresses = zone.get("LoadBalancerAddresses") or []
            mapping = {"SubnetId": zone.get("SubnetId")}
            for address in addresses:
                if address.get("AllocationId"):
                    mapping["AllocationId"] = address["AllocationId"]
                if address.get("PrivateIPv4Address"):
                    mapping["PrivateIPv4Address"] = address["PrivateIPv4Address"]
                if address.get("IPv6Address"):
                    mapping["IPv6Address"] = address["IPv6Address"]
            mappings.append(mapping)
        value = {
            "LoadBalancerArn": lb["LoadBalancerArn"],
            "LoadBalancerName": lb.get("LoadBalancerName"),
            "LoadBalancerFullName": _lb_full_name(lb["LoadBalancerArn"]),
            "DNSName": lb.get("DNSName"),
            "CanonicalHostedZoneID": lb.get("CanonicalHostedZoneId"),
            "Name": lb.get("LoadBalancerName"),
            "Type": lb.get("Type"),
            "Scheme": lb.get("Scheme"),
            "IpAddressType": lb.get("IpAddressType"),
            "SecurityGroups": lb.get("SecurityGroups"),
            "Subnets": [z["SubnetId"] for z in zones if z.get("SubnetId")],
            # Only when they say more than Subnets does (Elastic IPs, fixed private IPs):
            # CreateLoadBalancer takes one of the two, so an import must not get both.
            "SubnetMappings": mappings if any(len(m) > 1 for m in mappings) else None,
            "LoadBalancerAttributes": _attributes(attributes),
            "Tags": visible_tags(_tags_of(elb, physical_id)),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        elb = self.clients("elbv2")
        lb = self._describe(physical_id)
        with aws_errors():
            if changed(old, new, "SubnetMappings") and new.get("SubnetMappings"):
                mappings = to_api(
                    new["SubnetMappings"], input_shape(elb, "SetSubnets").members["SubnetMappings"]
                )
                elb.set_subnets(LoadBalancerArn=physical_id, SubnetMappings=mappings)
            elif changed(old, new, "Subnets") and new.get("Subnets"):
                elb.set_subnets(LoadBalancerArn=physical_id, Subnets=new["Subnets"])
            if sorted(new.get("SecurityGroups") or []) != sorted(lb.get("SecurityGroups") or []) and (
                new.get("SecurityGroups") or lb.get("SecurityGroups")
            ):
                elb.set_security_groups(
                    LoadBalancerArn=physical_id, SecurityGroups=new.get("SecurityGroups") or []
                )
            if new.get("IpAddressType") and new["IpAddressType"] != lb.get("IpAddressType"):
                elb.set_ip_address_type(LoadBalancerArn=physical_id, IpAddressType=new["IpAddressType"])
        self._sync_attributes(physical_id, new.get("LoadBalancerAttributes"))
        _sync_tags(elb, physical_id, new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        elb = self.clients("elbv2")
        with gone_is_success(LB_MISSING):
            elb.delete_load_balancer(LoadBalancerArn=physical_id)

        def gone():
            try:
                self._describe(physical_id)
            except ResourceMissing:
                return True
            return False

        wait_until(gone, what=f"load balancer {physical_id} to be deleted")


# --- Target group -----------------------------------------------------------------------

TG_MODIFIABLE = (
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckPath",
    "HealthCheckEnabled",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)


@register
class TargetGroupProvider(Provider):
    type_name = "AWS::ElasticLoadBalancingV2::TargetGroup"
    create_only = ("Name", "Port", "Protocol", "ProtocolVersion", "VpcId", "TargetType", "IpAddressType")
    handled = create_only + TG_MODIFIABLE + ("TargetGroupAttributes", "Targets", "Tags")
    read_only = ("TargetGroupArn", "TargetGroupName", "TargetGroupFullName", "LoadBalancerArns")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        elb = self.clients("elbv2")
        name = properties.get("Name") or derived_name(token, max_len=NAME_MAX)
        try:
            existing = self._describe(names=[name])
        except ResourceMissing:
            existing = None
        if existing:
            arn = _adopt_or_refuse(elb, existing["TargetGroupArn"], token, f"Target group {name}")
        else:
            values = {key: properties.get(key) for key in self.create_only + TG_MODIFIABLE}
            values.update(Name=name, Tags=aws_tags(properties.get("Tags"), token))
            kwargs = _api(elb, "CreateTargetGroup", values)
            with aws_errors():
                arn = elb.create_target_group(**kwargs)["TargetGroups"][0]["TargetGroupArn"]
        self._sync_attributes(arn, properties.get("TargetGroupAttributes"))
        self._sync_targets(arn, properties.get("Targets"))
        return self.read(arn)

    def _describe(self, arn=None, names=None):
        kwargs = {"Names": names} if names else {"TargetGroupArns": [arn]}
        with aws_errors(missing=TG_MISSING):
            found = self.clients("elbv2").describe_target_groups(**kwargs)["TargetGroups"]
        if not found:
            raise ResourceMissing(f"Target group {arn or names} does not exist")
        return found[0]

    def _sync_attributes(self, arn, desired):
        if not desired:
            return
        elb = self.clients("elbv2")
        with aws_errors():
            observed = elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
            todo = _changed_attributes(desired, observed)
            if todo:
                elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=todo)

    def _targets(self, arn):
        with aws_errors(missing=TG_MISSING):
            health = self.clients("elbv2").describe_target_health(TargetGroupArn=arn)[
                "TargetHealthDescriptions"
            ]
        return [drop_none(dict(h["Target"])) for h in health]

    def _sync_targets(self, arn, desired):
        if desired is None:
            return
        elb = self.clients("elbv2")
        shape = input_shape(elb, "RegisterTargets").members["Targets"]

        def key(t):
            return (str(t.get("Id")), int(t["Port"]) if t.get("Port") is not None else None)

        want = {key(t): t for t in to_api(desired, shape)}
        have = {key(t): t for t in self._targets(arn)}
        add = [t for k, t in want.items() if k not in have]
        remove = [t for k, t in have.items() if k not in want]
        with aws_errors():
            if add:
                elb.register_targets(TargetGroupArn=arn, Targets=add)
            if remove:
                elb.deregister_targets(TargetGroupArn=arn, Targets=remove)

    def read(self, physical_id, properties=None):
        elb = self.clients("elbv2")
        tg = self._describe(physical_id)
        with aws_errors(missing=TG_MISSING):
            attributes = elb.describe_target_group_attributes(TargetGroupArn=physical_id)["Attributes"]
        value = {
            "TargetGroupArn": tg["TargetGroupArn"],
            "TargetGroupName": tg.get("TargetGroupName"),
            "TargetGroupFullName": _tg_full_name(tg["TargetGroupArn"]),
            "Name": tg.get("TargetGroupName"),
            "LoadBalancerArns": tg.get("LoadBalancerArns") or [],
            "Port": tg.get("Port"),
            "Protocol": tg.get("Protocol"),
            "ProtocolVersion": tg.get("ProtocolVersion"),
            "VpcId": tg.get("VpcId"),
            "TargetType": tg.get("TargetType"),
            "IpAddressType": tg.get("IpAddressType"),
            "TargetGroupAttributes": _attributes(attributes),
            "Targets": self._targets(physical_id),
            "Tags": visible_tags(_tags_of(elb, physical_id)),
        }
        value.update({key: json_safe(tg.get(key)) for key in TG_MODIFIABLE})
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        elb = self.clients("elbv2")
        self._describe(physical_id)
        modified = {key: new.get(key) for key in TG_MODIFIABLE if changed(old, new, key)}
        modified = _api(elb, "ModifyTargetGroup", modified)
        if modified:
            with aws_errors(missing=TG_MISSING):
                elb.modify_target_group(TargetGroupArn=physical_id, **modified)
        self._sync_attributes(physical_id, new.get("TargetGroupAttributes"))
        self._sync_targets(physical_id, new.get("Targets") if "Targets" in new or "Targets" in old else None)
        _sync_tags(elb, physical_id, new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        # A target group that a listener or rule still forwards to gives ResourceInUse: the
        # apply deletes the rule (or listener) first, and ELB takes a moment to let go.
        elb = self.clients("elbv2")
        delete_retrying(
            lambda: elb.delete_target_group(TargetGroupArn=physical_id),
            missing=TG_MISSING,
            busy=("ResourceInUse",),
            what=f"target group {physical_id}",
        )


# --- Listener ---------------------------------------------------------------------------

LISTENER_MODIFIABLE = ("Port", "Protocol", "SslPolicy", "Certificates", "AlpnPolicy", "MutualAuthentication")


def _actions(elb, actions, operation="CreateListener", member="DefaultActions"):
    if actions is None:
        return None
    return to_api(actions, input_shape(elb, operation).members[member])


@register
class ListenerProvider(Provider):
    type_name = "AWS::ElasticLoadBalancingV2::Listener"
    create_only = ("LoadBalancerArn",)
    handled = (
        "LoadBalancerArn",
        "DefaultActions",
        "Port",
        "Protocol",
        "SslPolicy",
        "Certificates",
        "AlpnPolicy",
        "MutualAuthentication",
        "ListenerAttributes",
        "Tags",
    )
    read_only = ("ListenerArn",)

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        elb = self.clients("elbv2")
        lb_arn = properties.get("LoadBalancerArn")
        arn = self._existing(lb_arn, properties.get("Port"), token)
        if arn is None:
            values = {key: properties.get(key) for key in LISTENER_MODIFIABLE}
            values.update(
                LoadBalancerArn=lb_arn,
                DefaultActions=properties.get("DefaultActions"),
                Tags=aws_tags(properties.get("Tags"), token),
            )
            kwargs = _api(elb, "CreateListener", values)
            with aws_errors():
                arn = elb.create_listener(**kwargs)["Listeners"][0]["ListenerArn"]
        self._sync_attributes(arn, properties.get("ListenerAttributes"))
        return self.read(arn)

    def _existing(self, lb_arn, port, token):
        """The listener an earlier attempt made (by tag), or None; another one on the same
        port is a conflict."""
        if not lb_arn:
            return None
        paginator = self.clients("elbv2").get_paginator("describe_listeners")
        with aws_errors():
            listeners = [
                item for page in paginator.paginate(LoadBalancerArn=lb_arn) for item in page["Listeners"]
            ]
        for listener in listeners:
            same_port = port is not None and str(listener.get("Port")) == str(port)
            if same_port:
                return _adopt_or_refuse(
                    self.clients("elbv2"), listener["ListenerArn"], token, f"A listener on port {port}"
                )
            if port is None and tag_value(_tags_of(self.clients("elbv2"), listener["ListenerArn"])) == str(
                token
            ):
                return listener["ListenerArn"]
        return None

    def _describe(self, arn):
        with aws_errors(missing=LISTENER_MISSING):
            found = self.clients("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"]
        if not found:
            raise ResourceMissing(f"Listener {arn} does not exist")
        return found[0]

    def _sync_attributes(self, arn, desired):
        if not desired:
            return
        elb = self.clients("elbv2")
        with aws_errors():
            observed = elb.describe_listener_attributes(ListenerArn=arn)["Attributes"]
            todo = _changed_attributes(desired, observed)
            if todo:
                elb.modify_listener_attributes(ListenerArn=arn, Attributes=todo)

    def read(self, physical_id, properties=None):
        elb = self.clients("elbv2")
        listener = self._describe(physical_id)
        value = {
            "ListenerArn": listener["ListenerArn"],
            "LoadBalancerArn": listener.get("LoadBalancerArn"),
            "Port": listener.get("Port"),
            "Protocol": listener.get("Protocol"),
            "SslPolicy": listener.get("SslPolicy"),
            "Certificates": listener.get("Certificates") or None,
            "AlpnPolicy": listener.get("AlpnPolicy") or None,
            "MutualAuthentication": listener.get("MutualAuthentication"),
            "DefaultActions": json_safe(listener.get("DefaultActions") or []),
            "Tags": visible_tags(_tags_of(elb, physical_id)),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        elb = self.clients("elbv2")
        self._describe(physical_id)
        modified = {key: new.get(key) for key in LISTENER_MODIFIABLE if changed(old, new, key)}
        if changed(old, new, "DefaultActions"):
            modified["DefaultActions"] = new.get("DefaultActions")
        modified = _api(elb, "ModifyListener", modified)
        if modified:
            with aws_errors(missing=LISTENER_MISSING):
                elb.modify_listener(ListenerArn=physical_id, **modified)
        self._sync_attributes(physical_id, new.get("ListenerAttributes"))
        _sync_tags(elb, physical_id, new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        with gone_is_success(LISTENER_MISSING):
            self.clients("elbv2").delete_listener(ListenerArn=physical_id)


# --- Listener rule ----------------------------------------------------------------------


def _listener_of_rule(rule_arn):
    """`...:listener-rule/app/lb/id/listener-id/rule-id` -> `...:listener/app/lb/id/listener-id`."""
    if ":listener-rule/" not in rule_arn:
        return None
    head, path = rule_arn.split(":listener-rule/", 1)
    return f"{head}:listener/{path.rsplit('/', 1)[0]}"


@register
class ListenerRuleProvider(Provider):
    type_name = "AWS::ElasticLoadBalancingV2::ListenerRule"
    create_only = ("ListenerArn",)
    handled = ("ListenerArn", "Priority", "Conditions", "Actions", "Tags")
    read_only = ("RuleArn", "IsDefault")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        elb = self.clients("elbv2")
        listener_arn = properties.get("ListenerArn")
        priority = properties.get("Priority")
        arn = None
        if listener_arn and priority is not None:
            paginator = elb.get_paginator("describe_rules")
            with aws_errors():
                rules = [r for page in paginator.paginate(ListenerArn=listener_arn) for r in page["Rules"]]
            for rule in rules:
                if str(rule.get("Priority")) == str(priority):
                    arn = _adopt_or_refuse(elb, rule["RuleArn"], token, f"A rule with priority {priority}")
        if arn is None:
            kwargs = _api(
                elb,
                "CreateRule",
                {
                    "ListenerArn": listener_arn,
                    "Priority": priority,
                    "Conditions": properties.get("Conditions"),
                    "Actions": properties.get("Actions"),
                    "Tags": aws_tags(properties.get("Tags"), token),
                },
            )
            with aws_errors():
                arn = elb.create_rule(**kwargs)["Rules"][0]["RuleArn"]
        return self.read(arn)

    def _describe(self, arn):
        with aws_errors(missing=RULE_MISSING):
            found = self.clients("elbv2").describe_rules(RuleArns=[arn])["Rules"]
        if not found:
            raise ResourceMissing(f"Listener rule {arn} does not exist")
        return found[0]

    def read(self, physical_id, properties=None):
        elb = self.clients("elbv2")
        rule = self._describe(physical_id)
        priority = rule.get("Priority")
        value = {
            "RuleArn": rule["RuleArn"],
            "ListenerArn": (properties or {}).get("ListenerArn") or _listener_of_rule(rule["RuleArn"]),
            "Priority": int(priority) if str(priority).isdigit() else priority,
            "IsDefault": rule.get("IsDefault", False),
            "Conditions": json_safe(rule.get("Conditions") or []),
            "Actions": json_safe(rule.get("Actions") or []),
            "Tags": visible_tags(_tags_of(elb, physical_id)),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        elb = self.clients("elbv2")
        rule = self._describe(physical_id)
        modified = {}
        if changed(old, new, "Conditions"):
            modified["Conditions"] = new.get("Conditions") or []
        if changed(old, new, "Actions"):
            modified["Actions"] = new.get("Actions")
        modified = _api(elb, "ModifyRule", modified)
        with aws_errors(missing=RULE_MISSING):
            if modified:
                elb.modify_rule(RuleArn=physical_id, **modified)
            if new.get("Priority") is not None and str(new["Priority"]) != str(rule.get("Priority")):
                elb.set_rule_priorities(
                    RulePriorities=[{"RuleArn": physical_id, "Priority": int(new["Priority"])}]
                )
        _sync_tags(elb, physical_id, new.get("Tags"))
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        with gone_is_success(RULE_MISSING):
            self.clients("elbv2").delete_rule(RuleArn=physical_id)
