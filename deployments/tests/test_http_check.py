"""http_check from inside the VPC: metadata, link-local and other non-host addresses are
never fetched, loopback and private ranges only when the workspace allows them, a name is
resolved once and the connection goes to the address that was checked, and every redirect
hop is checked the same way."""

import socket

import pytest

from deployments.models import RunStatus
from workers import outbound_http

from . import mini as m

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",  # the ECS task metadata / credentials endpoint
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
]
PRIVATE = [
    "http://127.0.0.1:8080/health",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.0.3.7/health",
    "http://172.16.0.1/",
    "http://192.168.1.20/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_metadata_link_local_and_non_host_addresses_are_never_fetched(url):
    for allow_private in (False, True):
        with pytest.raises(outbound_http.Refused):
            outbound_http.get(url, timeout=1, allow_private=allow_private)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_are_refused_unless_the_workspace_allows_them(url):
    with pytest.raises(outbound_http.Refused, match=r"allow_private_http_checks"):
        outbound_http.get(url, timeout=1, allow_private=False)


def check(workspace, bob, url, **parameters):
    stage = {"Name": "Health", "Kind": "http_check", "Timeout": 5, "Parameters": {"Url": url, **parameters}}
    m.add_pipeline(workspace, bob, "check", [stage])


def test_a_check_of_a_loopback_url_fails_at_once_without_a_request(workspace, bob, run_pipeline, http_server):
    check(workspace, bob, http_server, Path="/health")

    run = run_pipeline(workspace, "check", bob)

    assert run.status == RunStatus.FAILED
    error = run.stages.get().error
    assert error.startswith(f"GET {http_server}/health refused: 127.0.0.1 is a loopback address")
    assert http_server.requests == []


def test_a_redirect_to_the_metadata_service_is_refused(workspace, bob, run_pipeline, http_server):
    workspace.allow_private_http_checks = True
    workspace.save()
    check(workspace, bob, http_server + "/to-metadata")

    run = run_pipeline(workspace, "check", bob)

    assert run.status == RunStatus.FAILED
    assert run.stages.get().error == (
        f"GET {http_server}/to-metadata refused: 169.254.169.254 is the instance metadata service"
    )
    assert [path for path, _ in http_server.requests] == ["/to-metadata"]


def test_a_redirect_is_followed_when_its_target_is_allowed(workspace, bob, run_pipeline, http_server):
    workspace.allow_private_http_checks = True
    workspace.save()
    check(workspace, bob, http_server + "/moved")

    run = run_pipeline(workspace, "check", bob)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [path for path, _ in http_server.requests] == ["/moved", "/health"]


@pytest.fixture
def dns(monkeypatch):
    """Names of our choosing (no DNS server in a test): {name: [answers, in turn]}."""
    answers, asked = {}, []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_called(http_server, dns):
    answers, asked = dns
    port = http_server.rsplit(":", 1)[1]
    # A second answer would point at the metadata service (DNS rebinding): it is never asked.
    answers["shop.internal"] = ["127.0.0.1", "169.254.169.254"]

    status, _ = outbound_http.get(f"http://shop.internal:{port}/health", timeout=5, allow_private=True)

    assert status == 200
    assert asked == ["shop.internal"]
    assert http_server.requests == [("/health", f"shop.internal:{port}")]  # the Host is the URL's


def test_a_name_that_resolves_to_a_private_address_is_refused(dns):
    answers, _ = dns
    answers["internal-shop-alb.example.com"] = ["10.0.3.7"]

    with pytest.raises(outbound_http.Refused, match=r"^internal-shop-alb.example.com resolves to 10.0.3.7: "):
        outbound_http.get("http://internal-shop-alb.example.com/health", timeout=1, allow_private=False)
