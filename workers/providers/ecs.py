"""ECS providers: clusters, task definitions and services.

CloudFormation property names (PascalCase) are converted to the ECS API's camelCase with
botocore's own service model (see `common.to_api`), so nested keys such as
`HealthCheck.StartPeriod` or a container's `Environment: [{Name, Value}]` map exactly and
user-data maps (`LogConfiguration.Options`, `DockerLabels`) keep their keys.

Service updates send only what changed. In particular `desiredCount` is sent only when
`DesiredCount` differs between the old and the new properties: sending it on every
deploy resets whatever autoscaling or an operator set and breaks rolling, zero-downtime
deployments (the seed's Phase 3 lesson).
"""

import re

from botocore.exceptions import ClientError

from .base import Observed, Provider, ProviderError, ResourceMissing, aws_message, error_code, register
from .common import (
    arn_resource_name,
    aws_errors,
    aws_tags,
    canonical_json,
    changed,
    delete_retrying,
    derived_name,
    drop_none,
    from_api,
    input_shape,
    output_shape,
    provider_error,
    retry_while_role_propagates,
    short_hash,
    tag_changes,
    tag_value,
    tags_from_aws,
    to_api,
    wait_until,
)

DEFINITION_TAG = "portal:definition-sha256"

# CloudFormation name -> ECS API name where they differ by more than the first letter's case.
TO_API = {
    "ClusterSettings": "settings",
    "PlacementStrategies": "placementStrategy",
    "ProxyConfigurationProperties": "properties",
}
# ECS API name -> CloudFormation name where capitalising the first letter is not enough.
FROM_API = {
    "settings": "ClusterSettings",
    "placementStrategy": "PlacementStrategies",
    "ProxyConfiguration.properties": "ProxyConfigurationProperties",
    "efsVolumeConfiguration": "EFSVolumeConfiguration",
    "EFSVolumeConfiguration.fileSystemId": "FilesystemId",
    "fsxWindowsFileServerVolumeConfiguration": "FSxWindowsFileServerVolumeConfiguration",
    "s3filesVolumeConfiguration": "S3FilesVolumeConfiguration",
    "iam": "IAM",
}


def to_api_shape(client, operation, body):
    return to_api(body, input_shape(client, operation), TO_API)


def to_api_member(shape, member, value, cfn_key):
    return to_api(value, shape.members[member], TO_API, f"/{cfn_key}")


def _ecs_tags(tags, token=None, extra=None):
    return aws_tags(tags, token, key="key", value="value", extra=extra)


def _retag(ecs, arn, old_tags, new_tags):
    to_set, to_remove = tag_changes(old_tags, new_tags)
    if to_remove:
        ecs.untag_resource(resourceArn=arn, tagKeys=to_remove)
    if to_set:
        ecs.tag_resource(resourceArn=arn, tags=_ecs_tags(to_set))


# --- AWS::ECS::Cluster ---------------------------------------------------------------------


@register
class EcsCluster(Provider):
    type_name = "AWS::ECS::Cluster"
    NOT_FOUND = ("ClusterNotFoundException",)
    IN_USE = (
        "ClusterContainsServicesException",
        "ClusterContainsTasksException",
        "ClusterContainsContainerInstancesException",
    )
    UPDATE_CLUSTER_KEYS = ("ClusterSettings", "Configuration", "ServiceConnectDefaults")

    def _request(self, props):
        body = {k: v for k, v in props.items() if k not in ("Tags", "Arn")}
        return to_api_shape(self.clients("ecs"), "CreateCluster", body)

    def _describe(self, name):
        out = self.clients("ecs").describe_clusters(
            clusters=[name], include=["TAGS", "SETTINGS", "CONFIGURATIONS"]
        )
        for cluster in out.get("clusters", []):
            if cluster.get("status") != "INACTIVE":
                return cluster
        raise ResourceMissing(f"ECS cluster {name} not found")

    def _observed(self, cluster):
        shape = output_shape(self.clients("ecs"), "DescribeClusters", "clusters")
        value = from_api(
            {
                k: cluster.get(k)
                for k in (
                    "settings",
                    "capacityProviders",
                    "defaultCapacityProviderStrategy",
                    "configuration",
                    "serviceConnectDefaults",
                )
                if cluster.get(k) not in (None, [], {})
            },
            shape,
            FROM_API,
        )
        value.update(
            {
                "Arn": cluster["clusterArn"],
                "ClusterName": cluster["clusterName"],
                "Status": cluster.get("status"),
                "ActiveServicesCount": cluster.get("activeServicesCount", 0),
                "RunningTasksCount": cluster.get("runningTasksCount", 0),
                "Tags": tags_from_aws(cluster.get("tags")),
            }
        )
        return Observed(cluster["clusterName"], value)

    def create(self, properties, token):
        name = properties.get("ClusterName") or derived_name(
            token, "portal", max_len=255, allowed="A-Za-z0-9_-"
        )
        with aws_errors():
            try:
                existing = self._describe(name)
            except ResourceMissing:
                existing = None
            if existing is not None:
                if tag_value(existing.get("tags")) == str(token):
                    return self._observed(existing)
                raise ProviderError(
                    f"An ECS cluster named {name} already exists and was not created by this component",
                    code="AlreadyExists",
                )
            request = self._request(properties)
            request["clusterName"] = name
            request["tags"] = _ecs_tags(properties.get("Tags"), token)
            cluster = self.clients("ecs").create_cluster(**request)["cluster"]
        # CreateCluster answers with the cluster as DescribeClusters would: no read after it.
        cluster.setdefault("tags", request["tags"])
        return self._observed(cluster)

    def read(self, physical_id, properties=None):
        with aws_errors(missing=self.NOT_FOUND):
            return self._observed(self._describe(physical_id))

    def update(self, physical_id, old, new):
        if arn_resource_name(old.get("ClusterName") or physical_id) != arn_resource_name(
            new.get("ClusterName") or physical_id
        ):
            raise ProviderError(
                "ClusterName cannot be changed on an existing ECS cluster; the cluster must be replaced",
                code="ImmutableProperty",
                immutable_property="ClusterName",
            )
        ecs = self.clients("ecs")
        with aws_errors(missing=self.NOT_FOUND):
            current = self._describe(physical_id)
            params = {}
            shape = input_shape(ecs, "UpdateCluster")
            for key in self.UPDATE_CLUSTER_KEYS:
                if changed(old, new, key) and new.get(key) is not None:
                    api = TO_API.get(key) or key[:1].lower() + key[1:]
                    params[api] = to_api_member(shape, api, new[key], key)
            if params:
                ecs.update_cluster(cluster=physical_id, **params)
            if changed(old, new, "CapacityProviders") or changed(old, new, "DefaultCapacityProviderStrategy"):
                shape = input_shape(ecs, "PutClusterCapacityProviders")
                ecs.put_cluster_capacity_providers(
                    cluster=physical_id,
                    capacityProviders=to_api_member(
                        shape, "capacityProviders", new.get("CapacityProviders") or [], "CapacityProviders"
                    ),
                    defaultCapacityProviderStrategy=to_api_member(
                        shape,
                        "defaultCapacityProviderStrategy",
                        new.get("DefaultCapacityProviderStrategy") or [],
                        "DefaultCapacityProviderStrategy",
                    ),
                )
            if changed(old, new, "Tags"):
                _retag(ecs, current["clusterArn"], current.get("tags"), new.get("Tags"))
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        ecs = self.clients("ecs")
        # Refused while the services and tasks of the cluster still drain.
        delete_retrying(
            lambda: ecs.delete_cluster(cluster=physical_id),
            missing=self.NOT_FOUND,
            busy=self.IN_USE,
            what=f"ECS cluster {physical_id}",
        )
        with aws_errors():

            def gone():
                try:
                    cluster = self._describe(physical_id)
                except ResourceMissing:
                    return True
                return cluster.get("status") == "INACTIVE"

            wait_until(gone, what=f"ECS cluster {physical_id} to be deleted")


# --- AWS::ECS::TaskDefinition ----------------------------------------------------------------

TASK_DEFINITION_KEYS = (
    "ContainerDefinitions",
    "Cpu",
    "EnableFaultInjection",
    "EphemeralStorage",
    "ExecutionRoleArn",
    "Family",
    "InferenceAccelerators",
    "IpcMode",
    "Memory",
    "NetworkMode",
    "PidMode",
    "PlacementConstraints",
    "ProxyConfiguration",
    "RequiresCompatibilities",
    "RuntimePlatform",
    "TaskRoleArn",
    "Volumes",
)


@register
class EcsTaskDefinition(Provider):
    """Each change registers a new revision; the physical id is the revision's ARN.

    The revision is tagged with the component id and with a hash of the exact request,
    so a create or update retried after a crash adopts the revision it registered
    instead of registering an identical one again.
    """

    type_name = "AWS::ECS::TaskDefinition"
    # How many of the family's newest ACTIVE revisions to look at before registering.
    LOOKBACK = 10

    def _request(self, props, family):
        body = {k: v for k, v in props.items() if k not in ("Tags", "TaskDefinitionArn")}
        body["Family"] = family
        return to_api_shape(self.clients("ecs"), "RegisterTaskDefinition", body)

    def _family(self, props, token):
        return props.get("Family") or derived_name(token, "portal", max_len=255, allowed="A-Za-z0-9_-")

    def _describe(self, arn, allow_inactive=False):
        try:
            out = self.clients("ecs").describe_task_definition(taskDefinition=arn, include=["TAGS"])
        except ClientError as exc:
            # ECS answers a missing revision with a generic ClientException.
            if error_code(exc) == "ClientException" and "unable to describe" in str(exc).lower():
                raise ResourceMissing(f"ECS task definition {arn} not found") from exc
            raise
        td = out["taskDefinition"]
        if td.get("status") == "INACTIVE" and not allow_inactive:
            raise ResourceMissing(f"ECS task definition {arn} is deregistered")
        return td, out.get("tags", [])

    def _observed(self, td, tags):
        shape = output_shape(self.clients("ecs"), "DescribeTaskDefinition", "taskDefinition")
        converted = from_api(td, shape, FROM_API)
        value = {k: converted[k] for k in TASK_DEFINITION_KEYS if converted.get(k) not in (None, [], {})}
        value.update(
            {
                "TaskDefinitionArn": td["taskDefinitionArn"],
                "Family": td["family"],
                "Revision": td["revision"],
                "Status": td.get("status"),
                "Tags": tags_from_aws(tags),
            }
        )
        return Observed(td["taskDefinitionArn"], value)

    def _find_or_register(self, props, token, family):
        """Adopt a recent ACTIVE revision registered for this token with this exact request,
        or register a new one."""
        ecs = self.clients("ecs")
        request = self._request(props, family)
        digest = short_hash(canonical_json(request), length=64)
        arns = ecs.list_task_definitions(
            familyPrefix=family, status="ACTIVE", sort="DESC", maxResults=self.LOOKBACK
        ).get("taskDefinitionArns", [])
        for arn in arns:
            try:
                td, tags = self._describe(arn)
            except ResourceMissing:
                continue
            if td.get("family") != family:
                continue
            if tag_value(tags, DEFINITION_TAG) == digest and (token is None or tag_value(tags) == str(token)):
                if tag_changes(tags, props.get("Tags")) != ([], []):
                    # Same definition, other tags (a replacement that only retagged).
                    _retag(ecs, arn, tags, props.get("Tags"))
                    td, tags = self._describe(arn)
                return self._observed(td, tags)
        request["tags"] = _ecs_tags(props.get("Tags"), token, extra={DEFINITION_TAG: digest})
        out = ecs.register_task_definition(**request)
        return self._observed(out["taskDefinition"], out.get("tags") or request["tags"])

    def create(self, properties, token):
        with aws_errors():
            return self._find_or_register(properties, token, self._family(properties, token))

    def read(self, physical_id, properties=None):
        with aws_errors():
            return self._observed(*self._describe(physical_id))

    def update(self, physical_id, old, new):
        ecs = self.clients("ecs")
        with aws_errors():
            try:
                # An INACTIVE old revision still tells the component id (a retried update).
                td, tags = self._describe(physical_id, allow_inactive=True)
            except ResourceMissing:
                td, tags = None, []
            token = tag_value(tags)
            definition_changed = any(changed(old, new, k) for k in TASK_DEFINITION_KEYS)
            if td is not None and td.get("status") == "ACTIVE" and not definition_changed:
                if changed(old, new, "Tags"):
                    _retag(ecs, physical_id, tags, new.get("Tags"))
                return self.read(physical_id, new)
            family = (
                new.get("Family") or (td or {}).get("family") or arn_resource_name(physical_id).split(":")[0]
            )
            # The old revision stays ACTIVE: services run it until they move, and a rollback
            # needs it. The apply's cleanup prunes the family (`prune`).
            return self._find_or_register(new, token, family)

    def prune(self, physical_id, keep, in_use):
        """Deregister the family's ACTIVE revisions beyond the newest `keep`, except those in
        `in_use` (ARNs a service runs); returns the deregistered ARNs."""
        ecs = self.clients("ecs")
        family = arn_resource_name(physical_id).split(":")[0]
        gone = []
        with aws_errors():
            paginator = ecs.get_paginator("list_task_definitions")
            arns = sorted(
                (
                    arn
                    for page in paginator.paginate(familyPrefix=family, status="ACTIVE", sort="DESC")
                    for arn in page.get("taskDefinitionArns", [])
                    if arn_resource_name(arn).split(":")[0] == family
                ),
                key=lambda arn: int(arn.rsplit(":", 1)[1]),
                reverse=True,
            )
            for arn in arns[keep:]:
                if arn in in_use or arn == physical_id:
                    continue
                try:
                    ecs.deregister_task_definition(taskDefinition=arn)
                except ClientError as exc:
                    if error_code(exc) != "ClientException":  # already INACTIVE
                        raise
                gone.append(arn)
        return gone

    def delete(self, physical_id, properties):
        with aws_errors():
            try:
                self.clients("ecs").deregister_task_definition(taskDefinition=physical_id)
            except ClientError as exc:
                # Already deregistered or never existed: ECS says so with a ClientException.
                if error_code(exc) == "ClientException":
                    try:
                        self._describe(physical_id)
                    except ResourceMissing:
                        return
                raise


# --- AWS::ECS::Service -------------------------------------------------------------------------

# Properties that cannot change in place (ECS has no API for it); changing them means a
# replacement. (ServiceRegistries/LoadBalancers are updatable on most services today, but
# AWS refuses for some deployment controllers: see `_immutable_from_message`.)
SERVICE_IMMUTABLE = ("Cluster", "ServiceName", "LaunchType", "SchedulingStrategy", "Role")
SERVICE_NOT_IN_UPDATE = SERVICE_IMMUTABLE + (
    "Tags",
    "DesiredCount",
    "ForceNewDeployment",
    "Name",
    "ServiceArn",
)
# What "removed from the properties" means for an update, where AWS needs a value to reset.
SERVICE_REMOVAL = {
    "LoadBalancers": [],
    "ServiceRegistries": [],
    "PlacementConstraints": [],
    "PlacementStrategies": [],
    "VolumeConfigurations": [],
    "VpcLatticeConfigurations": [],
    "HealthCheckGracePeriodSeconds": 0,
    "EnableExecuteCommand": False,
    "EnableECSManagedTags": False,
    "PropagateTags": "NONE",
    "PlatformVersion": "LATEST",
    "ServiceConnectConfiguration": {"enabled": False},
    "DeploymentConfiguration": {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    },
}
# Words in an AWS error that name the property it refuses to change, most specific first.
PROPERTY_PHRASES = (
    ("ServiceRegistries", ("service registr", "serviceregistr", "service discovery")),
    ("LoadBalancers", ("load balancer", "loadbalancer", "target group")),
    ("ServiceConnectConfiguration", ("service connect", "serviceconnect")),
    ("NetworkConfiguration", ("network configuration", "networkconfiguration", "awsvpc")),
    ("CapacityProviderStrategy", ("capacity provider", "capacityprovider")),
    ("PlacementStrategies", ("placement strateg", "placementstrateg")),
    ("PlacementConstraints", ("placement constraint", "placementconstraint")),
    ("PlatformVersion", ("platform version", "platformversion")),
    ("VolumeConfigurations", ("volume configuration", "volumeconfiguration")),
    ("DeploymentController", ("deployment controller", "deploymentcontroller")),
    ("TaskDefinition", ("task definition", "taskdefinition")),
)
REFUSAL = re.compile(
    r"cannot|can't|can not|unable to (update|change|modify)|not supported|immutable|not allowed|"
    r"not (be )?(updat|chang|modif)|only (be )?(set|specified) (at|during|when) creat|requires? (a )?(new|replace)",
    re.IGNORECASE,
)


def _immutable_from_message(message, sent_keys):
    """Best effort: the CloudFormation property an AWS refusal is about, if it is one we sent."""
    if not REFUSAL.search(message or ""):
        return None
    text = message.lower()
    for prop, phrases in PROPERTY_PHRASES:
        if prop in sent_keys and any(p in text for p in phrases):
            return prop
    return None


def _service_ids(physical_id, properties=None):
    """(cluster, service ARN) from the physical id; new-style ARNs name the cluster."""
    resource = physical_id.split(":", 5)[-1] if physical_id.startswith("arn:") else physical_id
    parts = resource.split("/")
    if len(parts) == 3:
        return parts[1], physical_id
    return ((properties or {}).get("Cluster") or "default"), physical_id


def _latest_event(svc):
    events = svc.get("events") or []
    return events[0]["message"] if events else "no service events"


def _cluster_key(props):
    return arn_resource_name((props or {}).get("Cluster") or "default")


@register
class EcsService(Provider):
    type_name = "AWS::ECS::Service"
    NOT_FOUND = ("ClusterNotFoundException", "ServiceNotFoundException")

    def _name(self, props, token):
        return props.get("ServiceName") or derived_name(token, "svc", max_len=255, allowed="A-Za-z0-9_-")

    def _describe(self, cluster, service):
        """The service as ECS describes it (any status), or ResourceMissing."""
        try:
            out = self.clients("ecs").describe_services(cluster=cluster, services=[service], include=["TAGS"])
        except ClientError as exc:
            if error_code(exc) in self.NOT_FOUND:
                raise ResourceMissing(f"ECS service {service} not found: {exc}") from exc
            raise
        services = out.get("services", [])
        if not services:
            raise ResourceMissing(f"ECS service {service} not found in cluster {cluster}")
        return services[0]

    def _observed(self, svc, props=None):
        ecs = self.clients("ecs")
        shape = output_shape(ecs, "DescribeServices", "services")
        converted = from_api(svc, shape, FROM_API)
        cluster_arn = svc.get("clusterArn", "")
        wanted_cluster = (props or {}).get("Cluster")
        cluster = (
            wanted_cluster
            if wanted_cluster and arn_resource_name(wanted_cluster) == arn_resource_name(cluster_arn)
            else cluster_arn
        )
        value = {
            "ServiceArn": svc["serviceArn"],
            "Name": svc["serviceName"],
            "ServiceName": svc["serviceName"],
            "Cluster": cluster,
            "ClusterArn": cluster_arn,
            "Status": svc.get("status"),
            "DesiredCount": svc.get("desiredCount"),
            "RunningCount": svc.get("runningCount"),
            "PendingCount": svc.get("pendingCount"),
            "TaskDefinition": svc.get("taskDefinition"),
            "LoadBalancers": converted.get("LoadBalancers", []),
            "ServiceRegistries": converted.get("ServiceRegistries", []),
            "Tags": tags_from_aws(svc.get("tags")),
            "Deployments": [
                drop_none(
                    {
                        "Id": d.get("Id"),
                        "Status": d.get("Status"),
                        "TaskDefinition": d.get("TaskDefinition"),
                        "DesiredCount": d.get("DesiredCount"),
                        "RunningCount": d.get("RunningCount"),
                        "PendingCount": d.get("PendingCount"),
                        "FailedTasks": d.get("FailedTasks"),
                        "RolloutState": d.get("RolloutState"),
                        "RolloutStateReason": d.get("RolloutStateReason"),
                        "CreatedAt": d.get("CreatedAt"),
                        "UpdatedAt": d.get("UpdatedAt"),
                    }
                )
                for d in converted.get("Deployments", [])
            ],
        }
        for key in (
            "LaunchType",
            "PlatformVersion",
            "NetworkConfiguration",
            "DeploymentConfiguration",
            "DeploymentController",
            "HealthCheckGracePeriodSeconds",
            "EnableExecuteCommand",
            "EnableECSManagedTags",
            "PropagateTags",
            "SchedulingStrategy",
            "CapacityProviderStrategy",
            "PlacementConstraints",
            "PlacementStrategies",
            "AvailabilityZoneRebalancing",
            "RoleArn",
        ):
            if converted.get(key) not in (None, [], {}):
                value[key] = converted[key]
        return Observed(svc["serviceArn"], value)

    def create(self, properties, token):
        ecs = self.clients("ecs")
        name = self._name(properties, token)
        cluster = properties.get("Cluster") or "default"
        with aws_errors():
            existing = self._find(cluster, name)
            if existing is not None:
                if tag_value(existing.get("tags")) == str(token):
                    return self._observed(self._wait_steady(cluster, existing), properties)
                raise ProviderError(
                    f"An ECS service named {name} already exists in cluster {cluster} "
                    "and was not created by this component",
                    code="AlreadyExists",
                )
            body = {
                k: v
                for k, v in properties.items()
                if k not in ("Tags", "ForceNewDeployment", "Name", "ServiceArn")
            }
            body["ServiceName"] = name
            if body.get("DesiredCount") is None and body.get("SchedulingStrategy") != "DAEMON":
                body["DesiredCount"] = 1  # CloudFormation's default for a new service
            request = to_api_shape(ecs, "CreateService", body)
            # The client token makes botocore's own retries of this call idempotent on AWS;
            # the lookup above covers a retry after a crash. It changes with the request, so
            # a replacement that reuses the component id is not mistaken for the old service.
            request["clientToken"] = short_hash(str(token), request, length=32)
            request["tags"] = _ecs_tags(properties.get("Tags"), token)
            svc = retry_while_role_propagates(lambda: ecs.create_service(**request))["service"]
            svc = self._wait_steady(cluster, svc)
        return self._observed(svc, properties)

    def _find(self, cluster, name):
        """The ACTIVE service with this name, waiting out a DRAINING one; None if there is none."""
        try:
            svc = self._describe(cluster, name)
        except ResourceMissing:
            return None
        if svc.get("status") == "DRAINING":

            def inactive():
                try:
                    return self._describe(cluster, name).get("status") == "INACTIVE"
                except ResourceMissing:
                    return True

            wait_until(inactive, what=f"the draining ECS service {name} to become INACTIVE")
            return None
        return None if svc.get("status") == "INACTIVE" else svc

    def _wait_steady(self, cluster, svc):
        """Wait, as CloudFormation does, until the deployment that this create or update
        started (the PRIMARY one in its answer) has completed, and return the service.

        A FAILED rollout, or our deployment gone (the circuit breaker rolled back to the
        previous one), fails with ECS's reason. Services that ECS does not deploy itself
        (CODE_DEPLOY, EXTERNAL controllers) have no deployment to wait for.
        """
        ours = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None)
        if ours is None:
            return svc
        name = svc["serviceName"]

        def steady():
            current = self._describe(cluster, svc["serviceArn"])
            deployments = current.get("deployments", [])
            deployment = next((d for d in deployments if d.get("id") == ours["id"]), None)
            state = (deployment or {}).get("rolloutState")
            if deployment is None or state == "FAILED" or deployment.get("status") != "PRIMARY":
                reason = (deployment or {}).get("rolloutStateReason") or _latest_event(current)
                raise ProviderError(
                    f"ECS deployment {ours['id']} of service {name} failed: {reason}", code="DeploymentFailed"
                )
            if state == "COMPLETED":
                return current
            # Without a rollout state (no circuit breaker), steady is CloudFormation's test.
            if state is None and len(deployments) == 1 and current["runningCount"] == current["desiredCount"]:
                return current
            return None

        try:
            return wait_until(steady, what=f"ECS service {name} to reach a steady state")
        except ProviderError as exc:
            if exc.code != "Timeout":
                raise
            current = self._describe(cluster, svc["serviceArn"])
            raise ProviderError(f"{exc.message}; ECS says: {_latest_event(current)}", code="Timeout") from exc

    def read(self, physical_id, properties=None):
        cluster, arn = _service_ids(physical_id, properties)
        with aws_errors(missing=self.NOT_FOUND):
            svc = self._describe(cluster, arn)
            if svc.get("status") == "INACTIVE":
                raise ResourceMissing(f"ECS service {arn} is INACTIVE")
            return self._observed(svc, properties)

    def update_params(self, old, new):
        """The UpdateService parameters for going from `old` to `new` properties (only changes)."""
        for key in SERVICE_IMMUTABLE:
            if key == "Cluster":
                differs = _cluster_key(old) != _cluster_key(new)
            else:
                differs = changed(old, new, key)
            if differs:
                raise ProviderError(
                    f"{key} cannot be changed on an existing ECS service; the service must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
        shape = input_shape(self.clients("ecs"), "UpdateService")
        members = {m.lower(): m for m in shape.members}
        params, sent = {}, []
        for key in sorted(set(old) | set(new)):
            if key in SERVICE_NOT_IN_UPDATE or not changed(old, new, key):
                continue
            api = TO_API.get(key) or members.get(key.lower())
            if api not in shape.members:
                raise ProviderError(
                    f"{key} cannot be changed on an existing ECS service; the service must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
            if new.get(key) is not None:
                params[api] = to_api_member(shape, api, new[key], key)
            elif key in SERVICE_REMOVAL:
                params[api] = SERVICE_REMOVAL[key]
            else:
                continue
            sent.append(key)
        # DesiredCount only when the component's own value changed: never as a side effect
        # of another change, so autoscaling and operators keep the count they chose.
        if changed(old, new, "DesiredCount") and new.get("DesiredCount") is not None:
            params["desiredCount"] = to_api_member(shape, "desiredCount", new["DesiredCount"], "DesiredCount")
            sent.append("DesiredCount")
        force = new.get("ForceNewDeployment") or {}
        if str(force.get("EnableForceNewDeployment")).lower() == "true" and (
            params or changed(old, new, "ForceNewDeployment")
        ):
            params["forceNewDeployment"] = True
            sent.append("ForceNewDeployment")
        return params, sent

    def update(self, physical_id, old, new):
        ecs = self.clients("ecs")
        params, sent = self.update_params(old, new)
        cluster, arn = _service_ids(physical_id, new)
        with aws_errors(missing=self.NOT_FOUND):
            current = self._describe(cluster, arn)
            if current.get("status") != "ACTIVE":
                raise ResourceMissing(f"ECS service {arn} is {current.get('status')}")
            if params:
                try:
                    updated = ecs.update_service(cluster=cluster, service=arn, **params)["service"]
                except ClientError as exc:
                    if error_code(exc) in self.NOT_FOUND:
                        raise
                    raise provider_error(
                        exc, immutable_property=_immutable_from_message(aws_message(exc), sent)
                    ) from exc
                self._wait_steady(cluster, updated)
            if changed(old, new, "Tags"):
                _retag(ecs, arn, current.get("tags"), new.get("Tags"))
        return self.read(physical_id, new)

    def delete(self, physical_id, properties):
        ecs = self.clients("ecs")
        cluster, arn = _service_ids(physical_id, properties)
        with aws_errors():
            try:
                svc = self._describe(cluster, arn)
            except ResourceMissing:
                return
            if svc.get("status") == "INACTIVE":
                return
            if svc.get("status") == "ACTIVE" and svc.get("desiredCount", 0) > 0:
                # The one place where the portal sets DesiredCount itself: draining before
                # deleting, so tasks stop through the deployment configuration.
                try:
                    ecs.update_service(cluster=cluster, service=arn, desiredCount=0)
                except ClientError as exc:
                    if error_code(exc) not in self.NOT_FOUND + ("ServiceNotActiveException",):
                        raise
            try:
                ecs.delete_service(cluster=cluster, service=arn, force=True)
            except ClientError as exc:
                if error_code(exc) in self.NOT_FOUND:
                    return
                if error_code(exc) != "ServiceNotActiveException":
                    raise

            def inactive():
                try:
                    return self._describe(cluster, arn).get("status") == "INACTIVE"
                except ResourceMissing:
                    return True

            wait_until(inactive, what=f"ECS service {arn} to become INACTIVE")
