import pytest


@pytest.fixture(autouse=True)
def cache_dir(settings, tmp_path):
    """Renders go to a temporary cache, never to the project's var/."""
    settings.VAR_DIR = tmp_path
    return tmp_path / "topology-cache"
