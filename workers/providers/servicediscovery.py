"""Cloud Map providers: AWS::ServiceDiscovery::PrivateDnsNamespace and ::Service.

Namespace create, namespace update/delete and service update are asynchronous: AWS returns
an operation id, and we poll GetOperation until it succeeds or fails.

Crash safety: creates pass CreatorRequestId (AWS then returns the first attempt's
operation), and also read before create — a namespace by name, a service by name within its
namespace — adopting one tagged with this component's token. The read is what makes a
retried create safe where the request id is not honoured (moto raises
ConflictingDomainExists instead), and it costs one list call on AWS.
"""

from botocore.exceptions import ClientError

from .base import PORTAL_TAG, Observed, Provider, ProviderError, error_code, register
from .common import (
    aws_errors,
    aws_tags,
    changed,
    created_or_ours,
    delete_retrying,
    derived_name,
    drop_none,
    gone_is_success,
    json_safe,
    provider_error,
    reject_immutable,
    reject_unsupported,
    request_token,
    short_hash,
    tag_changes,
    tag_value,
    visible_tags,
    wait_until,
)

NAMESPACE_MISSING = ("NamespaceNotFound",)
SERVICE_MISSING = ("ServiceNotFound",)


def _wait_operation(sd, operation_id, what):
    """Poll an asynchronous Cloud Map operation; return its Targets on success."""

    def check():
        with aws_errors():
            operation = sd.get_operation(OperationId=operation_id)["Operation"]
        status = operation.get("Status")
        if status == "FAIL":
            raise ProviderError(
                f"{operation.get('ErrorCode', 'Error')}: {operation.get('ErrorMessage', 'operation failed')}",
                code=operation.get("ErrorCode", "OperationFailed"),
            )
        return (operation.get("Targets") or {"done": ""}) if status == "SUCCESS" else None

    return wait_until(check, what=what)


def _tags_of(sd, arn):
    with aws_errors():
        return sd.list_tags_for_resource(ResourceARN=arn).get("Tags", [])


def _sync_tags(sd, arn, desired):
    to_set, to_remove = tag_changes(visible_tags(_tags_of(sd, arn)), desired)
    with aws_errors():
        if to_set:
            sd.tag_resource(ResourceARN=arn, Tags=to_set)
        if to_remove:
            sd.untag_resource(ResourceARN=arn, TagKeys=to_remove)


def _listed(sd, operation, key, filters):
    paginator = sd.get_paginator(operation)
    with aws_errors():
        return [item for page in paginator.paginate(Filters=filters) for item in page[key]]


def _hosted_zone_id(value):
    # Route 53 ids are sometimes written with their "/hostedzone/" path; CloudFormation's
    # HostedZoneId attribute is the bare id.
    return value.rsplit("/", 1)[-1] if value else value


@register
class PrivateDnsNamespaceProvider(Provider):
    type_name = "AWS::ServiceDiscovery::PrivateDnsNamespace"
    create_only = ("Name", "Vpc")
    handled = ("Name", "Vpc", "Description", "Properties", "Tags")
    read_only = ("Id", "Arn", "HostedZoneId")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        sd = self.clients("servicediscovery")
        name = properties.get("Name")
        namespace_id = self._existing(name, token)
        if namespace_id is None:
            kwargs = drop_none(
                {
                    "Name": name,
                    "Vpc": properties.get("Vpc"),
                    "Description": properties.get("Description"),
                    "CreatorRequestId": request_token(token),
                    "Tags": aws_tags(properties.get("Tags"), token),
                    "Properties": properties.get("Properties"),
                }
            )
            namespace_id = self._create(sd, kwargs)
        return self.read(namespace_id, properties)

    def _create(self, sd, kwargs):
        """Create the namespace and return its id.

        AWS answers a repeated CreatorRequestId (a create retried after a crash) with
        DuplicateRequest while the first attempt's operation runs (wait for that one), or
        with NamespaceAlreadyExists, naming the namespace, once it is done.
        """
        name = kwargs["Name"]
        try:
            operation_id = sd.create_private_dns_namespace(**kwargs)["OperationId"]
        except ClientError as exc:
            found = exc.response
            if error_code(exc) == "DuplicateRequest" and found.get("DuplicateOperationId"):
                operation_id = found["DuplicateOperationId"]
            elif (
                error_code(exc) == "NamespaceAlreadyExists"
                and found.get("NamespaceId")
                and found.get("CreatorRequestId") == kwargs["CreatorRequestId"]
            ):
                return found["NamespaceId"]
            else:
                raise provider_error(exc) from exc
        targets = _wait_operation(sd, operation_id, f"namespace {name} to be created")
        if not targets.get("NAMESPACE"):
            raise ProviderError(f"Creating namespace {name} returned no namespace id", code="OperationFailed")
        return targets["NAMESPACE"]

    def _existing(self, name, token):
        """The namespace of this name that an earlier attempt made for `token`, or None.

        The same name may exist in other VPCs (or belong to someone else); only our tag
        makes a namespace ours.
        """
        if not name:
            return None
        sd = self.clients("servicediscovery")
        filters = [
            {"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"},
            {"Name": "NAME", "Values": [name], "Condition": "EQ"},
        ]
        for namespace in _listed(sd, "list_namespaces", "Namespaces", filters):
            if namespace.get("Name") != name or namespace.get("Type", "DNS_PRIVATE") != "DNS_PRIVATE":
                continue  # filter again here: not every endpoint applies the filters
            if tag_value(_tags_of(sd, namespace["Arn"]), PORTAL_TAG) == str(token):
                return namespace["Id"]
        return None

    def _describe(self, namespace_id):
        with aws_errors(missing=NAMESPACE_MISSING):
            return self.clients("servicediscovery").get_namespace(Id=namespace_id)["Namespace"]

    def read(self, physical_id, properties=None):
        sd = self.clients("servicediscovery")
        namespace = self._describe(physical_id)
        dns = (namespace.get("Properties") or {}).get("DnsProperties") or {}
        value = {
            "Id": namespace["Id"],
            "Arn": namespace.get("Arn"),
            "Name": namespace.get("Name"),
            "Description": namespace.get("Description"),
            "HostedZoneId": _hosted_zone_id(dns.get("HostedZoneId")),
            "Properties": {"DnsProperties": {"SOA": dns["SOA"]}} if dns.get("SOA") else None,
            # Write-only in CloudFormation and not returned by GetNamespace: echo the input.
            "Vpc": (properties or {}).get("Vpc"),
            "Tags": visible_tags(_tags_of(sd, namespace["Arn"])),
        }
        return Observed(physical_id, drop_none(json_safe(value)))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        sd = self.clients("servicediscovery")
        namespace = self._describe(physical_id)
        change = {}
        if changed(old, new, "Description"):
            change["Description"] = new.get("Description") or ""
        if changed(old, new, "Properties") and new.get("Properties"):
            change["Properties"] = new["Properties"]
        if change:
            with aws_errors(missing=NAMESPACE_MISSING):
                operation_id = sd.update_private_dns_namespace(
                    Id=physical_id,
                    UpdaterRequestId=request_token(short_hash(physical_id, change)),
                    Namespace=change,
                )["OperationId"]
            _wait_operation(sd, operation_id, f"namespace {physical_id} to be updated")
        _sync_tags(sd, namespace["Arn"], new.get("Tags"))
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        sd = self.clients("servicediscovery")
        operation_id = None
        with gone_is_success(NAMESPACE_MISSING):
            operation_id = sd.delete_namespace(Id=physical_id)["OperationId"]
        if operation_id:
            _wait_operation(sd, operation_id, f"namespace {physical_id} to be deleted")


@register
class ServiceProvider(Provider):
    type_name = "AWS::ServiceDiscovery::Service"
    create_only = ("Name", "NamespaceId", "HealthCheckCustomConfig", "Type")
    handled = (
        "Name",
        "NamespaceId",
        "Description",
        "DnsConfig",
        "HealthCheckConfig",
        "HealthCheckCustomConfig",
        "Type",
        "ServiceAttributes",
        "Tags",
    )
    read_only = ("Id", "Arn")

    def create(self, properties, token):
        reject_unsupported(self.type_name, properties, self.handled, self.read_only)
        sd = self.clients("servicediscovery")
        namespace_id = self._namespace_id(properties)
        name = properties.get("Name") or derived_name(token, max_len=63, lower=True)
        service_id = self._existing(namespace_id, name, token)
        if service_id is None:
            dns = dict(properties.get("DnsConfig") or {})
            dns.pop("NamespaceId", None)  # deprecated inside DnsConfig; sent at the top level
            kwargs = drop_none(
                {
                    "Name": name,
                    "NamespaceId": namespace_id,
                    "CreatorRequestId": request_token(token),
                    "Description": properties.get("Description"),
                    "DnsConfig": dns or None,
                    "HealthCheckConfig": properties.get("HealthCheckConfig"),
                    "HealthCheckCustomConfig": properties.get("HealthCheckCustomConfig"),
                    "Type": properties.get("Type"),
                    "Tags": aws_tags(properties.get("Tags"), token),
                }
            )
            service_id = created_or_ours(
                lambda: sd.create_service(**kwargs)["Service"]["Id"],
                exists=("ServiceAlreadyExists",),
                ours=lambda: self._existing(namespace_id, name, token),
            )
        self._sync_attributes(service_id, properties.get("ServiceAttributes"))
        return self.read(service_id)

    @staticmethod
    def _namespace_id(properties):
        return properties.get("NamespaceId") or (properties.get("DnsConfig") or {}).get("NamespaceId")

    def _existing(self, namespace_id, name, token):
        """This component's service of that name in the namespace, or None. A service of
        that name made for something else is a conflict, as AWS would say."""
        if not namespace_id:
            return None
        sd = self.clients("servicediscovery")
        filters = [{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}]
        for service in _listed(sd, "list_services", "Services", filters):
            if service.get("NamespaceId", namespace_id) != namespace_id:
                continue  # filter again here: not every endpoint applies the filters
            if str(service.get("Name", "")).lower() != name.lower():
                continue
            if tag_value(_tags_of(sd, service["Arn"]), PORTAL_TAG) == str(token):
                return service["Id"]
            raise ProviderError(
                f"A service named {name} already exists in namespace {namespace_id}",
                code="ServiceAlreadyExists",
            )
        return None

    def _describe(self, service_id):
        with aws_errors(missing=SERVICE_MISSING):
            return self.clients("servicediscovery").get_service(Id=service_id)["Service"]

    def _sync_attributes(self, service_id, desired):
        if desired is None:
            return
        sd = self.clients("servicediscovery")
        with aws_errors(missing=SERVICE_MISSING):
            current = sd.get_service_attributes(ServiceId=service_id)["ServiceAttributes"].get(
                "Attributes", {}
            )
            want = {str(k): str(v) for k, v in desired.items()}
            todo = {k: v for k, v in want.items() if current.get(k) != v}
            gone = [k for k in current if k not in want]
            if todo:
                sd.update_service_attributes(ServiceId=service_id, Attributes=todo)
            if gone:
                sd.delete_service_attributes(ServiceId=service_id, Attributes=gone)

    def read(self, physical_id, properties=None):
        sd = self.clients("servicediscovery")
        service = self._describe(physical_id)
        with aws_errors(missing=SERVICE_MISSING):
            attributes = sd.get_service_attributes(ServiceId=physical_id)["ServiceAttributes"].get(
                "Attributes"
            )
        value = {
            "Id": service["Id"],
            "Arn": service.get("Arn"),
            "Name": service.get("Name"),
            "NamespaceId": service.get("NamespaceId"),
            "Description": service.get("Description"),
            "DnsConfig": service.get("DnsConfig"),
            "HealthCheckConfig": service.get("HealthCheckConfig"),
            "HealthCheckCustomConfig": service.get("HealthCheckCustomConfig"),
            "Type": service.get("Type"),
            "ServiceAttributes": attributes or None,
            "Tags": visible_tags(_tags_of(sd, service["Arn"])),
        }
        return Observed(physical_id, drop_none(json_safe(value)))

    def update(self, physical_id, old, new):
        reject_unsupported(self.type_name, new, self.handled, self.read_only)
        reject_immutable(old, new, self.create_only)
        if self._namespace_id(old) != self._namespace_id(new):
            reject_immutable({}, {"NamespaceId": self._namespace_id(new)}, ["NamespaceId"])
        routing = [(props.get("DnsConfig") or {}).get("RoutingPolicy") for props in (old, new)]
        if routing[0] != routing[1]:
            # UpdateService can change DNS records, not the routing policy.
            reject_immutable({}, {"DnsConfig": new.get("DnsConfig")}, ["DnsConfig"])
        sd = self.clients("servicediscovery")
        service = self._describe(physical_id)
        if any(changed(old, new, key) for key in ("Description", "DnsConfig", "HealthCheckConfig")):
            # UpdateService replaces the whole definition: DNS records or a health check
            # left out of the request are deleted, so send everything that should remain.
            change = {"Description": new.get("Description") or ""}
            if (new.get("DnsConfig") or {}).get("DnsRecords"):
                change["DnsConfig"] = {"DnsRecords": new["DnsConfig"]["DnsRecords"]}
            if new.get("HealthCheckConfig"):
                change["HealthCheckConfig"] = new["HealthCheckConfig"]
            with aws_errors(missing=SERVICE_MISSING):
                operation_id = sd.update_service(Id=physical_id, Service=change)["OperationId"]
            _wait_operation(sd, operation_id, f"service {physical_id} to be updated")
        self._sync_attributes(
            physical_id,
            new.get("ServiceAttributes")
            if "ServiceAttributes" in new or "ServiceAttributes" in old
            else None,
        )
        _sync_tags(sd, service["Arn"], new.get("Tags"))
        return self.read(physical_id)

    def delete(self, physical_id, properties):
        # ResourceInUse while instances are registered: ECS deregisters a deleted service's
        # tasks as they drain.
        sd = self.clients("servicediscovery")
        delete_retrying(
            lambda: sd.delete_service(Id=physical_id),
            missing=SERVICE_MISSING,
            busy=("ResourceInUse",),
            what=f"Cloud Map service {physical_id}",
        )
