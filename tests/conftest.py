import os
import tempfile

# No network at test time: litellm must not fetch its price map when a test imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# A response cache of the test session's own: tests never answer from a developer's cache.
os.environ["MOOT_CACHE_DIR"] = tempfile.mkdtemp(prefix="moot-test-cache-")
# Local models in their deterministic mode: one request at a time, llama-cpp-python's numbers
# (tests/test_batching.py sets the batched mode where it tests it).
os.environ.setdefault("MOOT_LLAMA_BATCHING", "exact")

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"
