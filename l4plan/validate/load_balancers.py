"""``load_balancer`` blocks: origins with weights and a health check."""

from l4plan.model import HealthCheck, LoadBalancer, Origin
from l4plan.validate.addresses import is_host_name, is_ip


def check_load_balancer(report, name, body):
    path = ("load_balancer", name)
    origins = []
    for index, origin in enumerate(body["origin"]):
        address = origin["address"]
        if not (is_ip(address) or is_host_name(address)):
            report.error(path + ("origin", index, "address"), f'"{address}" is not an IP address or host name', "Write the origin server's IP address or DNS name.")
        origins.append(Origin(address, origin.get("weight", 1)))
    check = body.get("health_check")
    health_check = HealthCheck(**check) if check is not None else None
    if health_check and health_check.timeout >= health_check.interval:
        report.error(
            path + ("health_check", "timeout"),
            f"health check timeout ({health_check.timeout}s) must be shorter than its interval ({health_check.interval}s)",
            "Lower timeout or raise interval.",
        )
    return LoadBalancer(name, body.get("algorithm", "round_robin"), tuple(origins), health_check)
