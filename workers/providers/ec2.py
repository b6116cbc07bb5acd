"""EC2 providers: AWS::EC2::VPC, AWS::EC2::Subnet, AWS::EC2::SecurityGroup.

All three are tagged `portal:component-id` in the create call itself (TagSpecifications),
so a create retried after a crash finds what the first attempt made by that tag. The
steps after the create call (VPC DNS attributes, subnet attributes, security group rules)
converge from what AWS holds, so an adopted resource gets whatever the crash left undone.
"""

from dataclasses import dataclass, field

from .base import Observed, Provider, ProviderError, ResourceMissing, register
from .common import (
    as_bool,
    aws_errors,
    created_or_ours,
    delete_retrying,
    derived_name,
    drop_none,
    ec2_find_tagged,
    ec2_sync_tags,
    ec2_tag_spec,
    reject_immutable,
    reject_unsupported,
    until_visible,
    visible_tags,
    wait_until,
)

VPC_MISSING = ("InvalidVpcID.NotFound",)
SUBNET_MISSING = ("InvalidSubnetID.NotFound",)
GROUP_MISSING = ("InvalidGroup.NotFound",)
IN_USE = ("DependencyViolation",)


def _wait_available(describe, what):
    def check():
        item = describe()
        return item if item.get("State", "available") == "available" else None

    return wait_until(check, what=what)


# --- VPC --------------------------------------------------------------------------------


@register
class VpcProvider(Provider):
    type_name = "AWS::EC2::VPC"
    create_only = ("CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength")
    handled = (
        "CidrBlock",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "InstanceTenancy",
        "EnableDnsSupport",
        "EnableDnsHostnames",
        "Tags",
    )
    read_only = (
        "VpcId",
        "CidrBlockAssociations",
        "DefaultNetworkAcl",
        "DefaultSecurityGroup",
        "Ipv6CidrBlocks",
    )

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        ec2 = self.clients("ec2")
        vpc = ec2_find_tagged(ec2, "describe_vpcs", "Vpcs", token)
        if vpc is None:
            kwargs = drop_none(
                {
                    "CidrBlock": properties.get("CidrBlock"),
                    "Ipv4IpamPoolId": properties.get("Ipv4IpamPoolId"),
                    "Ipv4NetmaskLength": properties.get("Ipv4NetmaskLength"),
                    "InstanceTenancy": properties.get("InstanceTenancy"),
                    "TagSpecifications": ec2_tag_spec("vpc", properties, token),
                }
            )
            with aws_errors():
                vpc = ec2.create_vpc(**kwargs)["Vpc"]
        vpc_id = vpc["VpcId"]
        _wait_available(lambda: self._describe_eventually(vpc_id), f"VPC {vpc_id} to become available")
        self._sync_dns(vpc_id, properties)
        return self.read(vpc_id)

    def _describe(self, vpc_id):
        with aws_errors(missing=VPC_MISSING):
            vpcs = self.clients("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        if not vpcs:
            raise ResourceMissing(f"VPC {vpc_id} does not exist")
        return vpcs[0]

    def _describe_eventually(self, vpc_id):
        ec2 = self.clients("ec2")
        return until_visible(
            lambda: ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0], VPC_MISSING, what=f"VPC {vpc_id}"
        )

    def _dns(self, vpc_id):
        ec2 = self.clients("ec2")
        with aws_errors(missing=VPC_MISSING):
            support = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")
            hostnames = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")
        return support["EnableDnsSupport"]["Value"], hostnames["EnableDnsHostnames"]["Value"]

    def _sync_dns(self, vpc_id, properties):
        # Absent means AWS's default (support on, hostnames off), as CloudFormation does.
        want_support = as_bool(properties.get("EnableDnsSupport"), True)
        want_hostnames = as_bool(properties.get("EnableDnsHostnames"), False)
        support, hostnames = self._dns(vpc_id)
        calls = []
        if support != want_support:
            calls.append({"EnableDnsSupport": {"Value": want_support}})
        if hostnames != want_hostnames:
            calls.append({"EnableDnsHostnames": {"Value": want_hostnames}})
        # Hostnames need DNS support: switch support on first, or hostnames off first.
        if not want_support:
            calls.reverse()
        ec2 = self.clients("ec2")
        with aws_errors():
            for attribute in calls:
                ec2.modify_vpc_attribute(VpcId=vpc_id, **attribute)

    def read(self, physical_id, properties=None):
        ec2 = self.clients("ec2")
        vpc = self._describe(physical_id)
        support, hostnames = self._dns(physical_id)
        with aws_errors():
            groups = ec2.describe_security_groups(
                Filters=[
                    {"Name": "vpc-id", "Values": [physical_id]},
                    {"Name": "group-name", "Values": ["default"]},
                ]
            )["SecurityGroups"]
            acls = ec2.describe_network_acls(
                Filters=[{"Name": "vpc-id", "Values": [physical_id]}, {"Name": "default", "Values": ["true"]}]
            )["NetworkAcls"]
        associated = ("associated", "associating")
        value = {
            "VpcId": vpc["VpcId"],
            "CidrBlock": vpc.get("CidrBlock"),
            "CidrBlockAssociations": [
                a["AssociationId"]
                for a in vpc.get("CidrBlockAssociationSet", [])
                if a.get("CidrBlockState", {}).get("State", "associated") in associated
            ],
            "Ipv6CidrBlocks": [
                a["Ipv6CidrBlock"]
                for a in vpc.get("Ipv6CidrBlockAssociationSet", [])
                if a.get("Ipv6CidrBlockState", {}).get("State", "associated") in associated
            ],
            "DefaultSecurityGroup": groups[0]["GroupId"] if groups else None,
            "DefaultNetworkAcl": acls[0]["NetworkAclId"] if acls else None,
            "EnableDnsSupport": support,
            "EnableDnsHostnames": hostnames,
            "InstanceTenancy": vpc.get("InstanceTenancy"),
            "Tags": visible_tags(vpc.get("Tags")),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        vpc = self._describe(physical_id)
        want_tenancy = new.get("InstanceTenancy") or "default"
        if want_tenancy != vpc.get("InstanceTenancy", "default"):
            # AWS can only move a VPC from dedicated to default tenancy.
            if want_tenancy != "default":
                reject_immutable({}, {"InstanceTenancy": want_tenancy}, ["InstanceTenancy"])
            with aws_errors():
                self.clients("ec2").modify_vpc_tenancy(VpcId=physical_id, InstanceTenancy="default")
        self._sync_dns(physical_id, new)
        ec2_sync_tags(self.clients("ec2"), physical_id, vpc.get("Tags"), new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        delete_retrying(
            lambda: ec2.delete_vpc(VpcId=physical_id),
            missing=VPC_MISSING,
            busy=IN_USE,
            what=f"VPC {physical_id}",
        )


# --- Subnet -----------------------------------------------------------------------------


@register
class SubnetProvider(Provider):
    type_name = "AWS::EC2::Subnet"
    create_only = (
        "VpcId",
        "AvailabilityZone",
        "AvailabilityZoneId",
        "CidrBlock",
        "OutpostArn",
        "Ipv6Native",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "Ipv6IpamPoolId",
        "Ipv6NetmaskLength",
    )
    handled = (
        "VpcId",
        "AvailabilityZone",
        "AvailabilityZoneId",
        "CidrBlock",
        "OutpostArn",
        "Ipv6Native",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "Ipv6IpamPoolId",
        "Ipv6NetmaskLength",
        "Ipv6CidrBlock",
        "MapPublicIpOnLaunch",
        "AssignIpv6AddressOnCreation",
        "EnableDns64",
        "PrivateDnsNameOptionsOnLaunch",
        "EnableLniAtDeviceIndex",
        "Tags",
    )
    read_only = ("SubnetId", "NetworkAclAssociationId", "Ipv6CidrBlocks", "BlockPublicAccessStates")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        ec2 = self.clients("ec2")
        subnet = ec2_find_tagged(ec2, "describe_subnets", "Subnets", token)
        if subnet is None:
            kwargs = drop_none({name: properties.get(name) for name in self.create_only + ("Ipv6CidrBlock",)})
            kwargs["TagSpecifications"] = ec2_tag_spec("subnet", properties, token)
            with aws_errors():
                subnet = ec2.create_subnet(**kwargs)["Subnet"]
        subnet_id = subnet["SubnetId"]
        subnet = _wait_available(
            lambda: until_visible(
                lambda: ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0],
                SUBNET_MISSING,
                what=f"subnet {subnet_id}",
            ),
            f"subnet {subnet_id} to become available",
        )
        self._sync_attributes(subnet, properties)
        return self.read(subnet_id)

    def _describe(self, subnet_id):
        with aws_errors(missing=SUBNET_MISSING):
            subnets = self.clients("ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        if not subnets:
            raise ResourceMissing(f"Subnet {subnet_id} does not exist")
        return subnets[0]

    def _sync_attributes(self, subnet, properties):
        ec2 = self.clients("ec2")
        subnet_id = subnet["SubnetId"]
        calls = []
        for name in ("MapPublicIpOnLaunch", "AssignIpv6AddressOnCreation", "EnableDns64"):
            want = as_bool(properties.get(name), False)
            if want != bool(subnet.get(name, False)):
                calls.append({name: {"Value": want}})
        options = properties.get("PrivateDnsNameOptionsOnLaunch") or {}
        current = subnet.get("PrivateDnsNameOptionsOnLaunch") or {}
        if "HostnameType" in options and options["HostnameType"] != current.get("HostnameType"):
            calls.append({"PrivateDnsHostnameTypeOnLaunch": options["HostnameType"]})
        for name in ("EnableResourceNameDnsARecord", "EnableResourceNameDnsAAAARecord"):
            if name in options and as_bool(options[name]) != bool(current.get(name, False)):
                calls.append({f"{name}OnLaunch": {"Value": as_bool(options[name])}})
        if properties.get("EnableLniAtDeviceIndex") is not None and int(
            properties["EnableLniAtDeviceIndex"]
        ) != subnet.get("EnableLniAtDeviceIndex"):
            calls.append({"EnableLniAtDeviceIndex": int(properties["EnableLniAtDeviceIndex"])})
        with aws_errors():
            for attribute in calls:
                ec2.modify_subnet_attribute(SubnetId=subnet_id, **attribute)

    def _sync_ipv6(self, subnet, want):
        ec2 = self.clients("ec2")
        current = [
            a
            for a in subnet.get("Ipv6CidrBlockAssociationSet", [])
            if a.get("Ipv6CidrBlockState", {}).get("State") in ("associated", "associating")
        ]
        if want and any(a["Ipv6CidrBlock"] == want for a in current):
            return
        with aws_errors():
            for association in current:
                ec2.disassociate_subnet_cidr_block(AssociationId=association["AssociationId"])
            if want:
                ec2.associate_subnet_cidr_block(SubnetId=subnet["SubnetId"], Ipv6CidrBlock=want)

    def read(self, physical_id, properties=None):
        subnet = self._describe(physical_id)
        with aws_errors():
            acls = self.clients("ec2").describe_network_acls(
                Filters=[{"Name": "association.subnet-id", "Values": [physical_id]}]
            )["NetworkAcls"]
        acl_association = None
        for acl in acls:
            for association in acl.get("Associations", []):
                if association.get("SubnetId") == physical_id:
                    acl_association = association.get("NetworkAclAssociationId")
        ipv6 = [
            a["Ipv6CidrBlock"]
            for a in subnet.get("Ipv6CidrBlockAssociationSet", [])
            if a.get("Ipv6CidrBlockState", {}).get("State", "associated") in ("associated", "associating")
        ]
        value = {
            "SubnetId": subnet["SubnetId"],
            "VpcId": subnet.get("VpcId"),
            "CidrBlock": subnet.get("CidrBlock"),
            "AvailabilityZone": subnet.get("AvailabilityZone"),
            "AvailabilityZoneId": subnet.get("AvailabilityZoneId"),
            "MapPublicIpOnLaunch": subnet.get("MapPublicIpOnLaunch"),
            "AssignIpv6AddressOnCreation": subnet.get("AssignIpv6AddressOnCreation"),
            "EnableDns64": subnet.get("EnableDns64"),
            "Ipv6Native": subnet.get("Ipv6Native"),
            "Ipv6CidrBlock": ipv6[0] if ipv6 else None,
            "Ipv6CidrBlocks": ipv6,
            "NetworkAclAssociationId": acl_association,
            "PrivateDnsNameOptionsOnLaunch": subnet.get("PrivateDnsNameOptionsOnLaunch"),
            "OutpostArn": subnet.get("OutpostArn"),
            "BlockPublicAccessStates": subnet.get("BlockPublicAccessStates"),
            "Tags": visible_tags(subnet.get("Tags")),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        subnet = self._describe(physical_id)
        if (old.get("Ipv6CidrBlock") or None) != (new.get("Ipv6CidrBlock") or None):
            # Unassign IPv6 on launch before the block goes, and assign it after it comes.
            self._sync_attributes(subnet, {**new, "AssignIpv6AddressOnCreation": False})
            self._sync_ipv6(subnet, new.get("Ipv6CidrBlock"))
            subnet = self._describe(physical_id)
        self._sync_attributes(subnet, new)
        ec2_sync_tags(self.clients("ec2"), physical_id, subnet.get("Tags"), new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        delete_retrying(
            lambda: ec2.delete_subnet(SubnetId=physical_id),
            missing=SUBNET_MISSING,
            busy=IN_USE,
            what=f"subnet {physical_id}",
        )


# --- Security group ---------------------------------------------------------------------

# CloudFormation rule property -> kind of peer, per direction.
INGRESS_PEERS = {
    "CidrIp": "CidrIp",
    "CidrIpv6": "CidrIpv6",
    "SourcePrefixListId": "PrefixListId",
    "SourceSecurityGroupId": "GroupId",
    "SourceSecurityGroupName": "GroupName",
}
EGRESS_PEERS = {
    "CidrIp": "CidrIp",
    "CidrIpv6": "CidrIpv6",
    "DestinationPrefixListId": "PrefixListId",
    "DestinationSecurityGroupId": "GroupId",
}
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
_WITH_PORTS = ("tcp", "udp", "icmp", "icmpv6")
# What CloudFormation leaves on a group whose template names no egress rule: AWS's default
# allow-all rule (plus its IPv6 twin, which AWS adds in a VPC with an IPv6 block).
DEFAULT_EGRESS = [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}]
DEFAULT_EGRESS_IPV6 = ("-1", None, None, "CidrIpv6", "::/0")


def _protocol(value):
    text = str(value if value is not None else "-1").strip().lower()
    return _PROTOCOL_NAMES.get(text, text)


def _ports(protocol, from_port, to_port):
    if protocol not in _WITH_PORTS:
        return None, None  # EC2 ignores ports for "all" and for other IP protocols
    default = -1 if protocol.startswith("icmp") else None
    return (
        default if from_port is None else int(from_port),
        default if to_port is None else int(to_port),
    )


@dataclass(frozen=True)
class Rule:
    """One CloudFormation-granularity rule: one protocol/port range and one peer."""

    protocol: str
    from_port: int | None
    to_port: int | None
    kind: str  # CidrIp | CidrIpv6 | PrefixListId | GroupId
    peer: str
    description: str = field(default="", compare=False)
    owner: str = field(default="", compare=False)

    @property
    def key(self):
        return (self.protocol, self.from_port, self.to_port, self.kind, self.peer)

    def permission(self):
        """The rule as an EC2 IpPermission."""
        perm = {"IpProtocol": self.protocol}
        if self.from_port is not None:
            perm["FromPort"], perm["ToPort"] = self.from_port, self.to_port
        extra = {"Description": self.description} if self.description else {}
        if self.kind == "CidrIp":
            perm["IpRanges"] = [{"CidrIp": self.peer, **extra}]
        elif self.kind == "CidrIpv6":
            perm["Ipv6Ranges"] = [{"CidrIpv6": self.peer, **extra}]
        elif self.kind == "PrefixListId":
            perm["PrefixListIds"] = [{"PrefixListId": self.peer, **extra}]
        else:
            pair = {"GroupId": self.peer, **extra}
            if self.owner:
                pair["UserId"] = self.owner
            perm["UserIdGroupPairs"] = [pair]
        return perm

    def to_cfn(self, egress, own_owner=""):
        names = {v: k for k, v in (EGRESS_PEERS if egress else INGRESS_PEERS).items()}
        out = {"IpProtocol": self.protocol}
        if self.from_port is not None:
            out["FromPort"], out["ToPort"] = self.from_port, self.to_port
        out[names[self.kind]] = self.peer
        if self.kind == "GroupId" and not egress and self.owner and self.owner != own_owner:
            out["SourceSecurityGroupOwnerId"] = self.owner
        if self.description:
            out["Description"] = self.description
        return out


def _observed_rules(permissions):
    """EC2 IpPermissions split into Rules, keyed by Rule.key, in AWS's order."""
    rules = {}
    for perm in permissions or []:
        protocol = _protocol(perm.get("IpProtocol"))
        from_port, to_port = _ports(protocol, perm.get("FromPort"), perm.get("ToPort"))
        peers = (
            [("CidrIp", e["CidrIp"], e, "") for e in perm.get("IpRanges", [])]
            + [("CidrIpv6", e["CidrIpv6"], e, "") for e in perm.get("Ipv6Ranges", [])]
            + [("PrefixListId", e["PrefixListId"], e, "") for e in perm.get("PrefixListIds", [])]
            + [
                ("GroupId", e.get("GroupId"), e, e.get("UserId") or "")
                for e in perm.get("UserIdGroupPairs", [])
            ]
        )
        for kind, peer, entry, owner in peers:
            rule = Rule(protocol, from_port, to_port, kind, peer, entry.get("Description") or "", owner)
            rules[rule.key] = rule
    return rules


@register
class SecurityGroupProvider(Provider):
    """Rules are written as CloudFormation writes them: one entry per peer.

    A rule may name the group itself as its source (`SourceSecurityGroupId` = the group's
    own id, the seed's self-referencing rule). Before the group exists that id is a pending
    subscription (None): such rules are left out of the create, and the follow-up update
    that carries the id adds them. As in CloudFormation, a group with no egress rules keeps
    AWS's default allow-all egress rule; naming egress rules replaces it.
    """

    type_name = "AWS::EC2::SecurityGroup"
    create_only = ("GroupDescription", "GroupName", "VpcId")
    handled = (
        "GroupDescription",
        "GroupName",
        "VpcId",
        "SecurityGroupIngress",
        "SecurityGroupEgress",
        "Tags",
    )
    read_only = ("GroupId", "Id")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        ec2 = self.clients("ec2")
        group = ec2_find_tagged(ec2, "describe_security_groups", "SecurityGroups", token)
        if group is None:
            kwargs = drop_none(
                {
                    "GroupName": properties.get("GroupName") or derived_name(token, max_len=255),
                    "Description": properties.get("GroupDescription"),
                    "VpcId": properties.get("VpcId"),
                    "TagSpecifications": ec2_tag_spec("security-group", properties, token),
                }
            )
            group_id = created_or_ours(
                lambda: ec2.create_security_group(**kwargs)["GroupId"],
                exists=("InvalidGroup.Duplicate",),
                ours=lambda: (
                    ec2_find_tagged(ec2, "describe_security_groups", "SecurityGroups", token) or {}
                ).get("GroupId"),
            )
            group = until_visible(
                lambda: ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0],
                GROUP_MISSING,
                what=f"security group {group_id}",
            )
        self._sync_rules(group, properties)
        return self.read(group["GroupId"])

    def _describe(self, group_id):
        with aws_errors(missing=GROUP_MISSING):
            groups = self.clients("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        if not groups:
            raise ResourceMissing(f"Security group {group_id} does not exist")
        return groups[0]

    def _desired_rules(self, group, rules, egress):
        peers = EGRESS_PEERS if egress else INGRESS_PEERS
        where = "SecurityGroupEgress" if egress else "SecurityGroupIngress"
        out = {}
        for index, raw in enumerate(rules):
            given = {kind: raw[prop] for prop, kind in peers.items() if prop in raw}
            if any(value is None for value in given.values()):
                continue  # a pending subscription, e.g. the group's own id before it exists
            if len(given) != 1:
                raise ProviderError(
                    f"{where}/{index}: a rule needs exactly one of {', '.join(peers)}", code="InvalidProperty"
                )
            kind, peer = given.popitem()
            if kind == "GroupName":
                kind, peer = "GroupId", self._group_id_by_name(group, peer)
            protocol = _protocol(raw.get("IpProtocol"))
            from_port, to_port = _ports(protocol, raw.get("FromPort"), raw.get("ToPort"))
            rule = Rule(
                protocol,
                from_port,
                to_port,
                kind,
                str(peer),
                raw.get("Description") or "",
                str(raw.get("SourceSecurityGroupOwnerId") or ""),
            )
            out[rule.key] = rule
        return out

    def _group_id_by_name(self, group, name):
        filters = [{"Name": "group-name", "Values": [name]}]
        if group.get("VpcId"):
            filters.append({"Name": "vpc-id", "Values": [group["VpcId"]]})
        with aws_errors():
            found = self.clients("ec2").describe_security_groups(Filters=filters)["SecurityGroups"]
        if not found:
            raise ProviderError(f"No security group named {name}", code="InvalidGroup.NotFound")
        return found[0]["GroupId"]

    def _rule_ids(self, group_id):
        """(is_egress, Rule.key) -> security group rule id, for revoking by id."""
        ids = {}
        paginator = self.clients("ec2").get_paginator("describe_security_group_rules")
        with aws_errors():
            for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
                for r in page["SecurityGroupRules"]:
                    protocol = _protocol(r.get("IpProtocol"))
                    from_port, to_port = _ports(protocol, r.get("FromPort"), r.get("ToPort"))
                    if r.get("CidrIpv4"):
                        kind, peer = "CidrIp", r["CidrIpv4"]
                    elif r.get("CidrIpv6"):
                        kind, peer = "CidrIpv6", r["CidrIpv6"]
                    elif r.get("PrefixListId"):
                        kind, peer = "PrefixListId", r["PrefixListId"]
                    else:
                        kind, peer = "GroupId", (r.get("ReferencedGroupInfo") or {}).get("GroupId")
                    ids[(bool(r.get("IsEgress")), (protocol, from_port, to_port, kind, peer))] = r[
                        "SecurityGroupRuleId"
                    ]
        return ids

    def _sync_rules(self, group, properties):
        """Authorize the rules that are missing, fix changed descriptions, then revoke the
        rules that are no longer wanted (additions first, so no traffic is cut in between)."""
        ec2 = self.clients("ec2")
        group_id = group["GroupId"]
        wanted = {
            False: self._desired_rules(group, properties.get("SecurityGroupIngress") or [], False),
            True: self._desired_rules(group, properties.get("SecurityGroupEgress") or DEFAULT_EGRESS, True),
        }
        present = {
            False: _observed_rules(group.get("IpPermissions")),
            True: _observed_rules(group.get("IpPermissionsEgress")),
        }
        if not properties.get("SecurityGroupEgress") and DEFAULT_EGRESS_IPV6 in present[True]:
            wanted[True][DEFAULT_EGRESS_IPV6] = present[True][DEFAULT_EGRESS_IPV6]
        authorize = {False: ec2.authorize_security_group_ingress, True: ec2.authorize_security_group_egress}
        describe = {
            False: ec2.update_security_group_rule_descriptions_ingress,
            True: ec2.update_security_group_rule_descriptions_egress,
        }
        revoke = {False: ec2.revoke_security_group_ingress, True: ec2.revoke_security_group_egress}
        with aws_errors():
            for egress in (False, True):
                new = [r.permission() for k, r in wanted[egress].items() if k not in present[egress]]
                if new:
                    authorize[egress](GroupId=group_id, IpPermissions=new)
                redescribed = [
                    r.permission()
                    for k, r in wanted[egress].items()
                    if k in present[egress] and present[egress][k].description != r.description
                ]
                if redescribed:
                    describe[egress](GroupId=group_id, IpPermissions=redescribed)
            gone = {
                egress: [k for k in present[egress] if k not in wanted[egress]] for egress in (False, True)
            }
            if not (gone[False] or gone[True]):
                return
            # Revoke by rule id: AWS matches an IpPermission without its description, but
            # an id names exactly one rule whatever its description.
            ids = self._rule_ids(group_id)
            for egress in (False, True):
                by_id = [ids[(egress, k)] for k in gone[egress] if (egress, k) in ids]
                by_permission = [
                    present[egress][k].permission() for k in gone[egress] if (egress, k) not in ids
                ]
                if by_id:
                    revoke[egress](GroupId=group_id, SecurityGroupRuleIds=by_id)
                if by_permission:
                    revoke[egress](GroupId=group_id, IpPermissions=by_permission)

    def read(self, physical_id, properties=None):
        group = self._describe(physical_id)
        owner = group.get("OwnerId", "")
        value = {
            "GroupId": group["GroupId"],
            "Id": group["GroupId"],
            "GroupName": group.get("GroupName"),
            "GroupDescription": group.get("Description"),
            "VpcId": group.get("VpcId"),
            "SecurityGroupIngress": [
                r.to_cfn(False, owner) for r in _observed_rules(group.get("IpPermissions")).values()
            ],
            "SecurityGroupEgress": [
                r.to_cfn(True, owner) for r in _observed_rules(group.get("IpPermissionsEgress")).values()
            ],
            "Tags": visible_tags(group.get("Tags")),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        group = self._describe(physical_id)
        self._sync_rules(group, new)
        ec2_sync_tags(self.clients("ec2"), physical_id, group.get("Tags"), new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        delete_retrying(
            lambda: ec2.delete_security_group(GroupId=physical_id),
            missing=GROUP_MISSING,
            busy=IN_USE,
            what=f"security group {physical_id}",
        )
