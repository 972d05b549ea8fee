"""Fixtures of the serving tests: tiny exports of the four tasks, and
`rnnapps serve` started as a real process."""

import pytest

from serving_support import TINY, Server, sleep_model, tiny_export


@pytest.fixture(scope="session")
def exports(tmp_path_factory, ding, emoji_font, english_text):
    """A model base path holding version 1 of each task."""
    base = tmp_path_factory.mktemp("saved_models")
    for name in TINY:
        tiny_export(name, base)
    return base


@pytest.fixture(scope="session")
def sleeper(tmp_path_factory):
    """A model folder whose requests take as long as they ask (`sleep_model`)."""
    return sleep_model(tmp_path_factory.mktemp("sleep"))


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(*args):
        server = Server(*args, cwd=tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    """One server for the read-only tests, serving every tiny export."""
    running = Server("--model-base-path", str(exports), "--poll-seconds", "0",
                     cwd=tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()
