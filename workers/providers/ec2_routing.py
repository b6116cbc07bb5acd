"""EC2 routing providers: AWS::EC2::InternetGateway, AWS::EC2::VPCGatewayAttachment,
AWS::EC2::RouteTable, AWS::EC2::Route, AWS::EC2::SubnetRouteTableAssociation.

Physical ids are what CloudFormation's Ref gives:

- InternetGateway: the gateway id (`igw-...`).
- VPCGatewayAttachment: `IGW|vpc-...` or `VPN|vpc-...` (the type's primary identifier is
  AttachmentType + VpcId; a VPC has at most one gateway of each kind). The gateway's id is
  not part of it: `read` finds the gateway attached to the VPC.
- RouteTable: the route table id (`rtb-...`).
- Route: `rtb-...|destination`, the destination being the IPv4 CIDR, IPv6 CIDR or prefix
  list id in the canonical form AWS stores (`10.0.0.7/16` is stored as `10.0.0.0/16`).
- SubnetRouteTableAssociation: the association id (`rtbassoc-...`).

Crash safety: the gateway and the route table are tagged `portal:component-id` in the
create call itself (TagSpecifications) and a retried create finds them by that tag.
Attachments, routes and associations take no tags: a retried create looks for them by their
natural key first (VPC + gateway, route table + destination, subnet + route table) and
adopts an identical one; a different one in the way is left to AWS to refuse.
"""

import ipaddress
import time

from botocore.exceptions import ClientError
from django.conf import settings

from .base import Observed, Provider, ProviderError, ResourceMissing, error_code, register
from .common import (
    aws_errors,
    delete_retrying,
    drop_none,
    ec2_find_tagged,
    ec2_sync_tags,
    ec2_tag_spec,
    provider_error,
    reject_immutable,
    short_hash,
    until_visible,
    visible_tags,
    wait_until,
)

IGW_MISSING = ("InvalidInternetGatewayID.NotFound",)
VGW_MISSING = ("InvalidVpnGatewayID.NotFound",)
VPC_MISSING = ("InvalidVpcID.NotFound",)
RTB_MISSING = ("InvalidRouteTableID.NotFound",)
ROUTE_MISSING = ("InvalidRoute.NotFound",)
ASSOCIATION_MISSING = ("InvalidAssociationID.NotFound",)
IN_USE = ("DependencyViolation",)
# A detach of a gateway that is not (any more) attached to the VPC.
NOT_ATTACHED = ("Gateway.NotAttached", "InvalidVpnGatewayAttachment.NotFound")
# Ids that a create names but that AWS may not see yet (eventual consistency right after
# the producer created them): the create is retried for a while, then AWS's error stands.
NOT_VISIBLE_YET = (
    "InvalidRouteTableID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidVpnGatewayID.NotFound",
    "InvalidGatewayID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidInstanceID.NotFound",
    "InvalidVpcPeeringConnectionID.NotFound",
    "InvalidTransitGatewayID.NotFound",
    "InvalidVpcEndpointId.NotFound",
)


def _retry_not_visible(call, *, codes=NOT_VISIBLE_YET, timeout=None):
    """Run a create-like `call()`, retrying while AWS does not see an id it names yet.
    After `timeout` (or for any other error) AWS's own error is raised as ProviderError."""
    timeout = settings.PORTAL_AWS_VISIBILITY_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) not in codes or time.monotonic() >= deadline:
                raise provider_error(exc) from exc
        time.sleep(settings.PORTAL_AWS_POLL_SECONDS)


def _split(physical_id, what):
    left, sep, right = str(physical_id).partition("|")
    if not sep or not left or not right:
        raise ProviderError(f"{physical_id!r} is not a {what} id (expected 'a|b')", code="InvalidPhysicalId")
    return left, right


# --- Internet gateway -------------------------------------------------------------------


@register
class InternetGatewayProvider(Provider):
    type_name = "AWS::EC2::InternetGateway"

    def create(self, properties, token):
        ec2 = self.clients("ec2")
        igw = ec2_find_tagged(ec2, "describe_internet_gateways", "InternetGateways", token)
        if igw is None:
            with aws_errors():
                igw = ec2.create_internet_gateway(
                    TagSpecifications=ec2_tag_spec("internet-gateway", properties, token)
                )["InternetGateway"]
        igw_id = igw["InternetGatewayId"]
        until_visible(
            lambda: ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0],
            IGW_MISSING,
            what=f"internet gateway {igw_id}",
        )
        return self.read(igw_id)

    def _describe(self, igw_id):
        with aws_errors(missing=IGW_MISSING):
            found = self.clients("ec2").describe_internet_gateways(InternetGatewayIds=[igw_id])[
                "InternetGateways"
            ]
        if not found:
            raise ResourceMissing(f"Internet gateway {igw_id} does not exist")
        return found[0]

    def read(self, physical_id, properties=None):
        igw = self._describe(physical_id)
        value = {"InternetGatewayId": igw["InternetGatewayId"], "Tags": visible_tags(igw.get("Tags"))}
        return Observed(physical_id, value)

    def update(self, physical_id, old, new):
        igw = self._describe(physical_id)
        ec2_sync_tags(self.clients("ec2"), physical_id, igw.get("Tags"), new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        # DependencyViolation: still attached (the attachment's detach not yet visible).
        delete_retrying(
            lambda: ec2.delete_internet_gateway(InternetGatewayId=physical_id),
            missing=IGW_MISSING,
            busy=IN_USE,
            what=f"internet gateway {physical_id}",
        )


# --- VPC gateway attachment -------------------------------------------------------------

IGW, VPN = "IGW", "VPN"
_LIVE_ATTACHMENT = ("attaching", "attached", "available")  # an IGW attachment reads "available"


@register
class VpcGatewayAttachmentProvider(Provider):
    """Attaches an internet gateway or a virtual private gateway to a VPC.

    Physical id `IGW|vpc-...` / `VPN|vpc-...`, as CloudFormation's Ref. Delete detaches the
    gateway; a detach that AWS refuses because public addresses are still mapped in the VPC
    (DependencyViolation) is retried for a while, as they usually are being released.
    """

    type_name = "AWS::EC2::VPCGatewayAttachment"

    @staticmethod
    def _wanted(properties):
        igw, vgw = properties.get("InternetGatewayId"), properties.get("VpnGatewayId")
        if bool(igw) == bool(vgw):
            raise ProviderError(
                "Specify exactly one of InternetGatewayId and VpnGatewayId", code="InvalidProperty"
            )
        return (IGW, igw) if igw else (VPN, vgw)

    def _attached(self, kind, vpc_id, states=_LIVE_ATTACHMENT):
        """(id, state) of the gateways of `kind` attached (or attaching) to the VPC."""
        ec2 = self.clients("ec2")
        filters = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
        with aws_errors():
            if kind == IGW:
                gateways = ec2.describe_internet_gateways(Filters=filters)["InternetGateways"]
                id_key, attachments_key = "InternetGatewayId", "Attachments"
            else:
                gateways = ec2.describe_vpn_gateways(Filters=filters)["VpnGateways"]
                id_key, attachments_key = "VpnGatewayId", "VpcAttachments"
        out = []
        for gateway in gateways:
            for attachment in gateway.get(attachments_key) or []:
                if attachment.get("VpcId") == vpc_id and attachment.get("State") in states:
                    out.append((gateway[id_key], attachment.get("State")))
        return out

    def _attach(self, kind, gateway_id, vpc_id):
        ec2 = self.clients("ec2")
        if kind == IGW:
            _retry_not_visible(
                lambda: ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
            )
            return

        _retry_not_visible(lambda: ec2.attach_vpn_gateway(VpnGatewayId=gateway_id, VpcId=vpc_id))

        def attached():
            return any(g == gateway_id and s == "attached" for g, s in self._attached(VPN, vpc_id))

        wait_until(attached, what=f"VPN gateway {gateway_id} to attach to {vpc_id}")

    def _detach(self, kind, gateway_id, vpc_id):
        ec2 = self.clients("ec2")
        if kind == IGW:
            delete_retrying(
                lambda: ec2.detach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id),
                missing=NOT_ATTACHED + IGW_MISSING + VPC_MISSING,
                busy=IN_USE,
                what=f"detaching internet gateway {gateway_id} from {vpc_id}",
            )
            return
        delete_retrying(
            lambda: ec2.detach_vpn_gateway(VpnGatewayId=gateway_id, VpcId=vpc_id),
            missing=NOT_ATTACHED + VGW_MISSING + VPC_MISSING,
            busy=IN_USE,
            what=f"detaching VPN gateway {gateway_id} from {vpc_id}",
        )
        # A VPC cannot be deleted while the detach is still in progress.
        wait_until(
            lambda: all(
                g != gateway_id for g, _ in self._attached(VPN, vpc_id, _LIVE_ATTACHMENT + ("detaching",))
            ),
            what=f"VPN gateway {gateway_id} to detach from {vpc_id}",
        )

    def create(self, properties, token):
        kind, gateway_id = self._wanted(properties)
        vpc_id = properties.get("VpcId")
        if not vpc_id:
            raise ProviderError("VpcId is required", code="InvalidProperty")
        # An attachment a crashed earlier attempt made is adopted.
        if not any(g == gateway_id for g, _ in self._attached(kind, vpc_id)):
            self._attach(kind, gateway_id, vpc_id)
        return self.read(f"{kind}|{vpc_id}", properties)

    def read(self, physical_id, properties=None):
        kind, vpc_id = _split(physical_id, "VPC gateway attachment")
        if kind not in (IGW, VPN):
            raise ProviderError(
                f"{physical_id!r}: unknown attachment type {kind!r}", code="InvalidPhysicalId"
            )
        attached = [g for g, _ in self._attached(kind, vpc_id)]
        if not attached:
            raise ResourceMissing(f"No {kind} gateway is attached to {vpc_id}")
        # AWS allows one gateway of a kind per VPC; prefer the one the properties name anyway.
        key = "InternetGatewayId" if kind == IGW else "VpnGatewayId"
        wanted = (properties or {}).get(key)
        gateway_id = wanted if wanted in attached else attached[0]
        return Observed(physical_id, {"AttachmentType": kind, "VpcId": vpc_id, key: gateway_id})

    def update(self, physical_id, old, new):
        reject_immutable(old, new, ("VpcId",))
        kind, gateway_id = self._wanted(new)
        vpc_id = new["VpcId"]
        old_kind, _ = _split(physical_id, "VPC gateway attachment")
        current = [g for g, _ in self._attached(old_kind, vpc_id)]
        if old_kind == kind and gateway_id in current:
            return self.read(physical_id, new)
        # Another gateway (or another kind of gateway): detach what this component attached,
        # then attach the new one. The physical id changes only when the kind does.
        old_key = "InternetGatewayId" if old_kind == IGW else "VpnGatewayId"
        previous = (old or {}).get(old_key)
        for attached in current:
            if previous is None or attached == previous:
                self._detach(old_kind, attached, vpc_id)
        if not any(g == gateway_id for g, _ in self._attached(kind, vpc_id)):
            self._attach(kind, gateway_id, vpc_id)
        return self.read(f"{kind}|{vpc_id}", new)

    def delete(self, physical_id, properties):
        kind, vpc_id = _split(physical_id, "VPC gateway attachment")
        key = "InternetGatewayId" if kind == IGW else "VpnGatewayId"
        named = (properties or {}).get(key)
        # Detach only the gateway this component attached; without properties, whatever is there.
        targets = [named] if named else [g for g, _ in self._attached(kind, vpc_id)]
        for gateway_id in targets:
            self._detach(kind, gateway_id, vpc_id)


# --- Route table ------------------------------------------------------------------------


@register
class RouteTableProvider(Provider):
    type_name = "AWS::EC2::RouteTable"
    create_only = ("VpcId",)

    def create(self, properties, token):
        ec2 = self.clients("ec2")
        table = ec2_find_tagged(ec2, "describe_route_tables", "RouteTables", token)
        if table is None:
            vpc_id = properties.get("VpcId")
            table = _retry_not_visible(
                lambda: ec2.create_route_table(
                    VpcId=vpc_id,
                    TagSpecifications=ec2_tag_spec("route-table", properties, token),
                    # Makes botocore's retries idempotent; a replacement (another VPC) gets
                    # another token, so AWS does not hand back the old table.
                    ClientToken=short_hash(str(token), vpc_id, length=32),
                ),
                codes=VPC_MISSING,
            )["RouteTable"]
        rtb_id = table["RouteTableId"]
        until_visible(
            lambda: ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0],
            RTB_MISSING,
            what=f"route table {rtb_id}",
        )
        return self.read(rtb_id)

    def _describe(self, rtb_id):
        with aws_errors(missing=RTB_MISSING):
            found = self.clients("ec2").describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"]
        if not found:
            raise ResourceMissing(f"Route table {rtb_id} does not exist")
        return found[0]

    def read(self, physical_id, properties=None):
        table = self._describe(physical_id)
        value = {
            "RouteTableId": table["RouteTableId"],
            "VpcId": table.get("VpcId"),
            "Tags": visible_tags(table.get("Tags")),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_immutable(old, new, self.create_only)
        table = self._describe(physical_id)
        ec2_sync_tags(self.clients("ec2"), physical_id, table.get("Tags"), new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        # DependencyViolation: subnets still associated (their associations go first).
        delete_retrying(
            lambda: ec2.delete_route_table(RouteTableId=physical_id),
            missing=RTB_MISSING,
            busy=IN_USE,
            what=f"route table {physical_id}",
        )


# --- Route ------------------------------------------------------------------------------

DESTINATIONS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId")
# CloudFormation target properties; each is also the CreateRoute/ReplaceRoute parameter name.
TARGETS = (
    "GatewayId",
    "NatGatewayId",
    "InstanceId",
    "NetworkInterfaceId",
    "VpcPeeringConnectionId",
    "TransitGatewayId",
    "EgressOnlyInternetGatewayId",
    "CarrierGatewayId",
    "LocalGatewayId",
    "VpcEndpointId",
    "CoreNetworkArn",
    "OdbNetworkArn",
)


def _canonical_cidr(value):
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        return str(value).strip()


def _destination(properties):
    """(API parameter name, canonical value) of the route's destination."""
    given = [(k, properties.get(k)) for k in DESTINATIONS if properties.get(k)]
    if len(given) != 1:
        raise ProviderError(
            "Specify exactly one of DestinationCidrBlock, DestinationIpv6CidrBlock and DestinationPrefixListId",
            code="InvalidProperty",
        )
    key, value = given[0]
    return key, (str(value).strip() if key == "DestinationPrefixListId" else _canonical_cidr(value))


def _destination_from_id(destination):
    if destination.startswith("pl-"):
        return "DestinationPrefixListId", destination
    if ":" in destination:
        return "DestinationIpv6CidrBlock", _canonical_cidr(destination)
    return "DestinationCidrBlock", _canonical_cidr(destination)


def _route_targets(route):
    """A described route's targets under their CloudFormation names (all AWS reports)."""
    out = {k: route[k] for k in TARGETS if route.get(k)}
    # A Gateway Load Balancer endpoint target reads back as GatewayId "vpce-...".
    if str(out.get("GatewayId", "")).startswith("vpce-"):
        out["VpcEndpointId"] = out.pop("GatewayId")
    return out


def _reported_targets(route, properties):
    """The targets `read` reports: one target, as a route is created with one. A route to
    an instance also reads back with the instance's network interface (and a route to an
    instance's interface with the instance): keep the one the properties name, else the
    instance, so that an imported route's properties are valid for CreateRoute."""
    out = _route_targets(route)
    if "InstanceId" in out and "NetworkInterfaceId" in out:
        props = properties or {}
        drop = (
            "InstanceId"
            if props.get("NetworkInterfaceId") and not props.get("InstanceId")
            else "NetworkInterfaceId"
        )
        out.pop(drop)
    return out


def _desired_targets(properties):
    return {k: str(properties[k]) for k in TARGETS if properties.get(k)}


def _same_target(route, desired):
    """Whether the route already points where `desired` says. AWS fills in more than was
    asked (an instance target also reads back with its network interface), so only the
    desired keys are compared."""
    observed = _route_targets(route)
    return bool(desired) and all(observed.get(k) == v for k, v in desired.items())


@register
class RouteProvider(Provider):
    type_name = "AWS::EC2::Route"
    create_only = ("RouteTableId",) + DESTINATIONS

    def _find(self, rtb_id, key, destination):
        """The route of `rtb_id` for the destination; ResourceMissing if the table or route is gone."""
        with aws_errors(missing=RTB_MISSING):
            tables = self.clients("ec2").describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"]
        if not tables:
            raise ResourceMissing(f"Route table {rtb_id} does not exist")
        for route in tables[0].get("Routes") or []:
            value = route.get(key)
            if value is None:
                continue
            if (value if key == "DestinationPrefixListId" else _canonical_cidr(value)) == destination:
                return route
        raise ResourceMissing(f"Route table {rtb_id} has no route for {destination}")

    def create(self, properties, token):
        rtb_id = properties.get("RouteTableId")
        if not rtb_id:
            raise ProviderError("RouteTableId is required", code="InvalidProperty")
        key, destination = _destination(properties)
        targets = _desired_targets(properties)
        try:
            existing = self._find(rtb_id, key, destination)
        except ResourceMissing:
            existing = None
        # An identical route (a crashed earlier attempt) is adopted; a different one for the
        # same destination is AWS's to refuse (RouteAlreadyExists).
        if existing is None or not _same_target(existing, targets):
            ec2 = self.clients("ec2")
            _retry_not_visible(lambda: ec2.create_route(RouteTableId=rtb_id, **{key: destination}, **targets))
        return self.read(f"{rtb_id}|{destination}", properties)

    def read(self, physical_id, properties=None):
        rtb_id, destination = _split(physical_id, "route")
        key, destination = _destination_from_id(destination)
        route = self._find(rtb_id, key, destination)
        value = {
            "RouteTableId": rtb_id,
            "CidrBlock": destination,
            key: route.get(key),
            **_reported_targets(route, properties),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        reject_immutable(old, new, self.create_only)
        rtb_id, destination = _split(physical_id, "route")
        key, destination = _destination_from_id(destination)
        targets = _desired_targets(new)
        route = self._find(rtb_id, key, destination)
        if not _same_target(route, targets):
            ec2 = self.clients("ec2")
            _retry_not_visible(
                lambda: ec2.replace_route(RouteTableId=rtb_id, **{key: destination}, **targets)
            )
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        rtb_id, destination = _split(physical_id, "route")
        key, destination = _destination_from_id(destination)
        ec2 = self.clients("ec2")
        delete_retrying(
            lambda: ec2.delete_route(RouteTableId=rtb_id, **{key: destination}),
            missing=ROUTE_MISSING + RTB_MISSING,
            what=f"route {physical_id}",
        )


# --- Subnet route table association -----------------------------------------------------

_LIVE_ASSOCIATION = ("associating", "associated")


@register
class SubnetRouteTableAssociationProvider(Provider):
    type_name = "AWS::EC2::SubnetRouteTableAssociation"
    create_only = ("SubnetId", "RouteTableId")

    def _associations(self, name, value):
        with aws_errors():
            tables = self.clients("ec2").describe_route_tables(Filters=[{"Name": name, "Values": [value]}])[
                "RouteTables"
            ]
        return [a for table in tables for a in table.get("Associations") or []]

    def _describe(self, association_id):
        for association in self._associations("association.route-table-association-id", association_id):
            if association.get("RouteTableAssociationId") != association_id:
                continue
            state = (association.get("AssociationState") or {}).get("State", "associated")
            if state in _LIVE_ASSOCIATION:
                return association
            if state == "failed":
                message = (association.get("AssociationState") or {}).get("StatusMessage") or "failed"
                raise ProviderError(f"Association {association_id}: {message}", code="AssociationFailed")
        raise ResourceMissing(f"Route table association {association_id} does not exist")

    def create(self, properties, token):
        subnet_id, rtb_id = properties.get("SubnetId"), properties.get("RouteTableId")
        if not subnet_id or not rtb_id:
            raise ProviderError("SubnetId and RouteTableId are required", code="InvalidProperty")
        association_id = None
        # The association a crashed earlier attempt made is adopted.
        for association in self._associations("association.subnet-id", subnet_id):
            state = (association.get("AssociationState") or {}).get("State", "associated")
            if (
                association.get("SubnetId") == subnet_id
                and association.get("RouteTableId") == rtb_id
                and state in _LIVE_ASSOCIATION
            ):
                association_id = association["RouteTableAssociationId"]
        if association_id is None:
            ec2 = self.clients("ec2")
            association_id = _retry_not_visible(
                lambda: ec2.associate_route_table(SubnetId=subnet_id, RouteTableId=rtb_id)
            )["AssociationId"]

        def associated():
            try:
                found = self._describe(association_id)
            except ResourceMissing:
                return None  # not visible yet
            return (
                found
                if (found.get("AssociationState") or {}).get("State", "associated") == "associated"
                else None
            )

        wait_until(
            associated,
            what=f"route table association {association_id}",
            timeout=settings.PORTAL_AWS_VISIBILITY_TIMEOUT,
        )
        return self.read(association_id)

    def read(self, physical_id, properties=None):
        association = self._describe(physical_id)
        value = {
            "Id": association["RouteTableAssociationId"],
            "SubnetId": association.get("SubnetId"),
            "RouteTableId": association.get("RouteTableId"),
        }
        return Observed(physical_id, drop_none(value))

    def update(self, physical_id, old, new):
        # Both properties are create-only: any change is a replacement.
        reject_immutable(old, new, self.create_only)
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        ec2 = self.clients("ec2")
        delete_retrying(
            lambda: ec2.disassociate_route_table(AssociationId=physical_id),
            missing=ASSOCIATION_MISSING,
            what=f"route table association {physical_id}",
        )
