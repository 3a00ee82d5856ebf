"""Shared bits of the docker-py acceptance flows (Tests/AcceptanceTests/DockerPyTests.swift runs them).

Each flow is a script: it talks to the berthd of $BERTH_SOCK with docker-py, asserts, prints "OK <flow>" last,
and removes what it made even when an assertion fails (exit status 1 with a traceback)."""
import contextlib
import os
import random
import sys

import docker


def client():
    sock = os.environ["BERTH_SOCK"]
    return docker.DockerClient(base_url="unix://" + sock, timeout=60)


def name(prefix):
    return "py-%s-%08x" % (prefix, random.getrandbits(32))


@contextlib.contextmanager
def cleanup(c, *names):
    """Removes the containers `names` (force) on the way out, whatever happened."""
    try:
        yield
    finally:
        for n in names:
            try:
                c.api.remove_container(n, force=True)
            except docker.errors.NotFound:
                pass
            except Exception as e:  # a cleanup failure must not hide the test's own
                print("cleanup of %s: %r" % (n, e), file=sys.stderr)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def ok(flow):
    print("OK " + flow)
