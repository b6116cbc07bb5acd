"""Requests to a URL a user wrote, made from a worker inside the VPC: the http_check
stage's GETs and the notification webhooks' POSTs.

A URL written in a pipeline must not become a way into what only the VPC can reach:

- never: link-local addresses (the instance and task metadata services at 169.254.169.254
  and 169.254.170.2 are there), the IPv6 metadata address fd00:ec2::254, unspecified,
  multicast and reserved addresses;
- only when the workspace allows private HTTP checks (`Workspace.allow_private_http_checks`):
  loopback, RFC 1918, unique-local fc00::/7, carrier-grade NAT 100.64.0.0/10 and any other
  address that is not globally routable (an internal load balancer's).

The host is resolved once, every address it resolves to is checked, and the connection
goes to the checked address (Host header and TLS SNI / certificate name stay the URL's),
so a second DNS answer cannot move the request elsewhere. Redirects are followed by hand,
at most MAX_REDIRECTS of them, and each hop is resolved and checked the same way.
"""

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import urllib3

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
USER_AGENT = "changeset-portal-pipeline"


class Refused(Exception):
    """The URL points where a check may not go; the message says why."""


class Unreachable(Exception):
    """No answer (DNS, connection, TLS, timeout); the message says what happened."""


def refusal(address, allow_private):
    """Why a check may not connect to `address` (an ip_address), or None."""
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA:
        return f"{address} is the instance metadata service"
    if address.is_link_local:
        return f"{address} is link-local (metadata services live there)"
    if address.is_unspecified or address.is_multicast or (address.is_reserved and not address.is_loopback):
        return f"{address} is not a unicast host address"
    if not address.is_global and not allow_private:
        kind = "loopback" if address.is_loopback else "private"
        return (
            f"{address} is a {kind} address; the workspace does not allow HTTP checks of "
            "private addresses (allow_private_http_checks)"
        )
    return None


def resolve(host, port, allow_private):
    """The one address to connect to; Refused if any address the host has is refused."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unreachable(f"{host} does not resolve ({exc})") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(a[4][0].split("%", 1)[0]) for a in answers))
    for address in addresses:
        why = refusal(address, allow_private)
        if why:
            raise Refused(why if literal is not None else f"{host} resolves to {address}: {why}")
    return str(addresses[0])


def get(url, timeout, allow_private):
    """(status, final URL) of a GET of `url`, redirects followed and checked hop by hop."""
    for _ in range(MAX_REDIRECTS + 1):
        status, headers, _ = _request("GET", url, timeout, allow_private)
        location = headers.get("Location")
        if status not in REDIRECTS or not location:
            return status, url
        url = urljoin(url, location)
    raise Refused(f"more than {MAX_REDIRECTS} redirects (last to {url})")


def post(url, body, headers, timeout, allow_private, user_agent=USER_AGENT, read_limit=1024):
    """(status, the first `read_limit` bytes of the answer) of a POST of `body` (bytes).
    A redirect is not followed: it is the answer."""
    status, _, content = _request(
        "POST", url, timeout, allow_private, body, {**headers, "User-Agent": user_agent}, read_limit
    )
    return status, content


def _request(method, url, timeout, allow_private, body=None, headers=None, read_limit=0):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"{url}: only http:// and https:// URLs are checked")
    host = parts.hostname
    if not host:
        raise Refused(f"{url} names no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise Refused(f"{url}: {exc}") from exc
    address = resolve(host, port, allow_private)
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, server_hostname=host, assert_hostname=host, **options
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    try:
        response = pool.urlopen(
            method,
            target,
            body=body,
            headers={"User-Agent": USER_AGENT, **(headers or {}), "Host": host_header},
            redirect=False,
            preload_content=False,
        )
        try:
            content = response.read(read_limit) if read_limit else b""
            return response.status, response.headers, content
        finally:
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        raise Unreachable(str(getattr(exc, "reason", None) or exc)) from exc
    finally:
        pool.close()
