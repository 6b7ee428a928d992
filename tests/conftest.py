import os

# No network at test time: litellm must not fetch its price map when a test imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"
