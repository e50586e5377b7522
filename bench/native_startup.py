"""Seconds from starting ``pulumi-resource-tdx`` to its GetSchema answer (issue 20: < 0.5 s).

    .venv/bin/python -m bench.native_startup --runs 5

Each run starts the plugin as Pulumi does (the engine address as its argument; here nothing
listens there, and GetSchema needs no engine), reads the port from its stdout, asks GetSchema
and stops it. Prints each figure and the median; fails on no number.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time


def measure_once(plugin: str) -> tuple[float, float, str]:
    """(seconds to the port line, seconds to the GetSchema answer, the schema)."""
    import grpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    start = time.monotonic()
    proc = subprocess.Popen([plugin, "127.0.0.1:1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        listening = time.monotonic() - start
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            reply = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30)
        answered = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return listening, answered, reply.schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plugin", default=shutil.which("pulumi-resource-tdx") or "")
    args = parser.parse_args()
    answers = []
    for run in range(args.runs):
        listening, answered, text = measure_once(args.plugin)
        answers.append(answered)
        print(f"run {run + 1}: port after {listening:.3f} s, GetSchema ({len(text)} characters) "
              f"answered after {answered:.3f} s")
    print(f"median GetSchema after start: {statistics.median(answers):.3f} s")


if __name__ == "__main__":
    main()
