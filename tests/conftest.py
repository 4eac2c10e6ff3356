from __future__ import annotations

import pytest

from tests.support.platform import Platform


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    """The whole platform, started once for the session."""
    running = Platform(tmp_path_factory.mktemp("platform"))
    try:
        running.start_all()
    except Exception:
        for name in running.processes:
            print(f"----- {name} -----\n{running.log(name)[-3000:]}")
        running.close()
        raise
    yield running
    running.close()
