"""Fill the test cloud once its services run (Debian's python3 and keystoneauth1).

``bootstrap.py catalog STATE``: the ``service`` project, one user per service (admin role),
the compute, placement, image and network services and their endpoints.
``bootstrap.py cloud STATE HOST=AZ ...``: flavors, a 1 MiB raw image, one aggregate per
availability zone holding its hosts. Both are idempotent (existing objects are kept).
Ports and the password come from STATE/cloud.env (written by scripts/openstack.sh).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from keystoneauth1 import session
from keystoneauth1.identity import v3

FLAVORS = {  # name: (vcpus, ram MiB, disk GiB)
    "m1.tiny": (1, 512, 1),
    "m1.small": (1, 1024, 1),
    "m1.medium": (2, 2048, 1),
    "m1.large": (4, 4096, 1),
}


def env(state: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (state / "cloud.env").read_text().splitlines())
    return {k: v for k, v in pairs}


def admin(e: dict[str, str]) -> session.Session:
    auth = v3.Password(
        auth_url=f"http://127.0.0.1:{e['KEYSTONE_PORT']}/v3",
        username="admin",
        password=e["PASSWORD"],
        project_name="admin",
        user_domain_id="default",
        project_domain_id="default",
    )
    return session.Session(auth=auth, connect_retries=5)


def keystone_ids(s: session.Session, e: dict[str, str], kind: str, key: str) -> dict[str, str]:
    url = f"http://127.0.0.1:{e['KEYSTONE_PORT']}/v3/{kind}"
    return {o[key]: o["id"] for o in s.get(url).json()[kind]}


def catalog(state: Path) -> None:
    e = env(state)
    s = admin(e)
    ks = f"http://127.0.0.1:{e['KEYSTONE_PORT']}/v3"
    if "service" not in keystone_ids(s, e, "projects", "name"):
        s.post(f"{ks}/projects", json={"project": {"name": "service", "domain_id": "default"}})
    project = keystone_ids(s, e, "projects", "name")["service"]
    role = keystone_ids(s, e, "roles", "name")["admin"]
    users = keystone_ids(s, e, "users", "name")
    services = keystone_ids(s, e, "services", "type")
    wanted = {
        "compute": ("nova", f"http://127.0.0.1:{e['NOVA_PORT']}/v2.1"),
        "placement": ("placement", f"http://127.0.0.1:{e['PLACEMENT_PORT']}"),
        "image": ("glance", f"http://127.0.0.1:{e['GLANCE_PORT']}"),
        "network": ("neutron", f"http://127.0.0.1:{e['NEUTRON_PORT']}"),
    }
    for kind, (name, url) in wanted.items():
        if name not in users:
            body = {"name": name, "password": e["PASSWORD"], "domain_id": "default"}
            uid = s.post(f"{ks}/users", json={"user": body}).json()["user"]["id"]
            s.put(f"{ks}/projects/{project}/users/{uid}/roles/{role}")
        if kind in services:
            continue
        body = {"type": kind, "name": name}
        sid = s.post(f"{ks}/services", json={"service": body}).json()["service"]["id"]
        for interface in ("public", "internal", "admin"):
            ep = {"service_id": sid, "interface": interface, "url": url, "region_id": "RegionOne"}
            s.post(f"{ks}/endpoints", json={"endpoint": ep})


def cloud(state: Path, zones: dict[str, str]) -> None:
    e = env(state)
    s = admin(e)
    nova = f"http://127.0.0.1:{e['NOVA_PORT']}/v2.1"
    have = {f["name"] for f in s.get(f"{nova}/flavors").json()["flavors"]}
    for name, (vcpus, ram, disk) in FLAVORS.items():
        if name not in have:
            body = {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}
            s.post(f"{nova}/flavors", json={"flavor": body})
    image(s, e)
    aggregates(s, nova, zones)


def image(s: session.Session, e: dict[str, str]) -> None:
    glance = f"http://127.0.0.1:{e['GLANCE_PORT']}/v2/images"
    if any(i["name"] == "xdrs-test" for i in s.get(glance).json()["images"]):
        return
    body = {"name": "xdrs-test", "disk_format": "raw", "container_format": "bare"}
    iid = s.post(glance, json=body).json()["id"]
    s.put(
        f"{glance}/{iid}/file",
        data=bytes(1 << 20),
        headers={"Content-Type": "application/octet-stream"},
    )


def aggregates(s: session.Session, nova: str, zones: dict[str, str]) -> None:
    have = {a["name"]: a for a in s.get(f"{nova}/os-aggregates").json()["aggregates"]}
    for az in sorted(set(zones.values())):
        if az not in have:
            body = {"aggregate": {"name": az, "availability_zone": az}}
            have[az] = s.post(f"{nova}/os-aggregates", json=body).json()["aggregate"]
        for host, zone in zones.items():
            if zone == az and host not in (have[az].get("hosts") or []):
                s.post(
                    f"{nova}/os-aggregates/{have[az]['id']}/action",
                    json={"add_host": {"host": host}},
                )


def wait_hosts(state: Path, hosts: list[str], timeout: float) -> None:
    """Wait until every fake host's compute service is up in the API."""
    e = env(state)
    s = admin(e)
    nova = f"http://127.0.0.1:{e['NOVA_PORT']}/v2.1"
    deadline = time.monotonic() + timeout
    while True:
        up = {
            c["host"]
            for c in s.get(f"{nova}/os-services?binary=nova-compute").json()["services"]
            if c["state"] == "up"
        }
        if set(hosts) <= up:
            return
        if time.monotonic() > deadline:
            sys.exit(f"compute hosts not up after {timeout:.0f} s: {sorted(set(hosts) - up)}")
        time.sleep(1)


def main(argv: list[str]) -> None:
    command, state = argv[0], Path(argv[1])
    if command == "catalog":
        catalog(state)
    elif command == "wait-hosts":
        wait_hosts(state, argv[3:], float(argv[2]))
    elif command == "cloud":
        cloud(state, dict(a.split("=", 1) for a in argv[2:]))
    else:
        sys.exit(f"bootstrap.py: unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
