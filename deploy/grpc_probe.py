#!/usr/bin/env python3
"""A gRPC client that is not ours (Python grpcio) probing a platform service.

Calls grpc.health.v1.Health/Check for the whole server and for each named
service, and lists the services through server reflection. Exits non-zero
unless every check answers SERVING and reflection lists every expected
service.

    python3 deploy/grpc_probe.py 127.0.0.1:50051 user.v1.UserService
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    target, expected = sys.argv[1], sys.argv[2:]
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)

    health = health_pb2_grpc.HealthStub(channel)
    failures = 0
    for service in ["", *expected]:
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        print(f"health {service or '(server)'}: {name}")
        failures += status != health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    listed = sorted(s.name for r in responses for s in r.list_services_response.service)
    print("reflection lists:", ", ".join(listed))
    for service in [*expected, "grpc.health.v1.Health"]:
        if service not in listed:
            print(f"missing from reflection: {service}")
            failures += 1

    print("probe ok" if failures == 0 else f"probe failed: {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
