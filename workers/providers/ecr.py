"""ECR repositories (AWS::ECR::Repository). The physical id is the repository name.

A create is several calls (repository, lifecycle policy, repository policy); the last two
are idempotent puts, so a create retried after a crash adopts the tagged repository and
finishes them.
"""

import json

from botocore.exceptions import ClientError

from .base import Observed, Provider, ProviderError, ResourceMissing, error_code, register
from .common import (
    aws_errors,
    aws_tags,
    canonical_json,
    changed,
    created_or_ours,
    derived_name,
    input_shape,
    tag_changes,
    tag_value,
    tags_from_aws,
    to_api,
)

NOT_FOUND = ("RepositoryNotFoundException",)
RENAMES = {
    "ImageTagMutabilityExclusionFilterType": "filterType",
    "ImageTagMutabilityExclusionFilterValue": "filter",
}
CREATE_KEYS = (
    "ImageTagMutability",
    "ImageScanningConfiguration",
    "EncryptionConfiguration",
    "ImageTagMutabilityExclusionFilters",
)


def _policy_text(value):
    return value if isinstance(value, str) else json.dumps(value)


@register
class Repository(Provider):
    type_name = "AWS::ECR::Repository"

    @property
    def ecr(self):
        return self.clients("ecr")

    def _describe(self, name):
        try:
            return self.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise ResourceMissing(f"ECR repository {name} not found") from exc
            raise

    def _observed(self, repo):
        name = repo["repositoryName"]
        value = {
            "Arn": repo["repositoryArn"],
            "RepositoryUri": repo["repositoryUri"],
            "RepositoryName": name,
            "RegistryId": repo.get("registryId"),
            "ImageTagMutability": repo.get("imageTagMutability"),
        }
        if repo.get("imageScanningConfiguration") is not None:
            value["ImageScanningConfiguration"] = {
                "ScanOnPush": bool(repo["imageScanningConfiguration"].get("scanOnPush"))
            }
        enc = repo.get("encryptionConfiguration")
        if enc:
            value["EncryptionConfiguration"] = {
                k: v
                for k, v in {"EncryptionType": enc.get("encryptionType"), "KmsKey": enc.get("kmsKey")}.items()
                if v
            }
        filters = repo.get("imageTagMutabilityExclusionFilters")
        if filters:
            value["ImageTagMutabilityExclusionFilters"] = [
                {
                    "ImageTagMutabilityExclusionFilterType": f.get("filterType"),
                    "ImageTagMutabilityExclusionFilterValue": f.get("filter"),
                }
                for f in filters
            ]
        try:
            lifecycle = self.ecr.get_lifecycle_policy(repositoryName=name)
            value["LifecyclePolicy"] = {
                "LifecyclePolicyText": lifecycle["lifecyclePolicyText"],
                "RegistryId": lifecycle.get("registryId"),
            }
        except ClientError as exc:
            if error_code(exc) != "LifecyclePolicyNotFoundException":
                raise
        try:
            text = self.ecr.get_repository_policy(repositoryName=name)["policyText"]
            try:
                value["RepositoryPolicyText"] = json.loads(text)
            except ValueError:
                value["RepositoryPolicyText"] = text
        except ClientError as exc:
            if error_code(exc) != "RepositoryPolicyNotFoundException":
                raise
        tags = self.ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
        value["Tags"] = tags_from_aws(tags)
        return Observed(name, {k: v for k, v in value.items() if v is not None})

    def _put_lifecycle(self, name, policy):
        if policy and policy.get("LifecyclePolicyText"):
            kwargs = {
                "repositoryName": name,
                "lifecyclePolicyText": _policy_text(policy["LifecyclePolicyText"]),
            }
            if policy.get("RegistryId"):
                kwargs["registryId"] = str(policy["RegistryId"])
            self.ecr.put_lifecycle_policy(**kwargs)
        else:
            try:
                self.ecr.delete_lifecycle_policy(repositoryName=name)
            except ClientError as exc:
                if error_code(exc) != "LifecyclePolicyNotFoundException":
                    raise

    def _put_policy(self, name, policy):
        if policy:
            self.ecr.set_repository_policy(repositoryName=name, policyText=_policy_text(policy))
        else:
            try:
                self.ecr.delete_repository_policy(repositoryName=name)
            except ClientError as exc:
                if error_code(exc) != "RepositoryPolicyNotFoundException":
                    raise

    def _made_for(self, name, token):
        """The repository `name` if it carries this component's tag, else None."""
        repo = self._describe(name)
        tags = self.ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
        return repo if tag_value(tags) == str(token) else None

    def create(self, properties, token):
        name = properties.get("RepositoryName") or derived_name(
            token, "portal", max_len=256, lower=True, allowed="a-z0-9._/-"
        )
        with aws_errors():
            try:
                repo = self._describe(name)
            except ResourceMissing:
                repo = None
            if repo is not None:
                if not self._made_for(name, token):
                    raise ProviderError(
                        f"An ECR repository named {name} already exists and was not created by this component",
                        code="AlreadyExists",
                    )
            else:
                body = {k: properties[k] for k in CREATE_KEYS if properties.get(k) is not None}
                request = to_api(body, input_shape(self.ecr, "CreateRepository"), RENAMES)
                request["repositoryName"] = name
                request["tags"] = aws_tags(properties.get("Tags"), token)
                repo = created_or_ours(
                    lambda: self.ecr.create_repository(**request)["repository"],
                    exists=("RepositoryAlreadyExistsException",),
                    ours=lambda: self._made_for(name, token),
                )
            # Idempotent steps: run them on an adopted repository too.
            if properties.get("LifecyclePolicy"):
                self._put_lifecycle(name, properties["LifecyclePolicy"])
            if properties.get("RepositoryPolicyText"):
                self._put_policy(name, properties["RepositoryPolicyText"])
            return self._observed(self._describe(name))

    def read(self, physical_id, properties=None):
        with aws_errors(missing=NOT_FOUND):
            return self._observed(self._describe(physical_id))

    def update(self, physical_id, old, new):
        for key in ("RepositoryName", "EncryptionConfiguration"):
            if changed(old, new, key):
                raise ProviderError(
                    f"{key} cannot be changed on an existing ECR repository; it must be replaced",
                    code="ImmutableProperty",
                    immutable_property=key,
                )
        ecr = self.ecr
        name = physical_id
        with aws_errors(missing=NOT_FOUND):
            repo = self._describe(name)
            if changed(old, new, "ImageTagMutability") or changed(
                old, new, "ImageTagMutabilityExclusionFilters"
            ):
                shape = input_shape(ecr, "PutImageTagMutability")
                body = {"ImageTagMutability": new.get("ImageTagMutability") or "MUTABLE"}
                if new.get("ImageTagMutabilityExclusionFilters") or old.get(
                    "ImageTagMutabilityExclusionFilters"
                ):
                    body["ImageTagMutabilityExclusionFilters"] = (
                        new.get("ImageTagMutabilityExclusionFilters") or []
                    )
                ecr.put_image_tag_mutability(repositoryName=name, **to_api(body, shape, RENAMES))
            if changed(old, new, "ImageScanningConfiguration"):
                scan = new.get("ImageScanningConfiguration") or {"ScanOnPush": False}
                shape = input_shape(ecr, "PutImageScanningConfiguration")
                ecr.put_image_scanning_configuration(
                    repositoryName=name,
                    imageScanningConfiguration=to_api(
                        scan,
                        shape.members["imageScanningConfiguration"],
                        RENAMES,
                        "/ImageScanningConfiguration",
                    ),
                )
            if canonical_json(old.get("LifecyclePolicy")) != canonical_json(new.get("LifecyclePolicy")):
                self._put_lifecycle(name, new.get("LifecyclePolicy"))
            if changed(old, new, "RepositoryPolicyText"):
                self._put_policy(name, new.get("RepositoryPolicyText"))
            if changed(old, new, "Tags"):
                to_set, to_remove = tag_changes(old.get("Tags"), new.get("Tags"))
                if to_remove:
                    ecr.untag_resource(resourceArn=repo["repositoryArn"], tagKeys=to_remove)
                if to_set:
                    ecr.tag_resource(resourceArn=repo["repositoryArn"], tags=aws_tags(to_set))
            return self._observed(self._describe(name))

    def delete(self, physical_id, properties):
        force = str((properties or {}).get("EmptyOnDelete", False)).lower() == "true"
        with aws_errors():
            try:
                self.ecr.delete_repository(repositoryName=physical_id, force=force)
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return
                raise
