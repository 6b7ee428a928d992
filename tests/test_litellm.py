"""The litellm path, offline: the scripted model behind litellm's own request path, litellm's
mock_response, keys kept out of every record, and the error classification."""

from __future__ import annotations

import os
import socket
import time
import traceback

import httpx
import pytest
from helpers import RecordingSink

# Sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported (no price-file download).
import moot.models.litellm_api as litellm_api
from moot.errors import ConfigError
from moot.models.base import GenerateRequest, ProviderError
from moot.models.gateway import CallTag, Model, ModelCallFailed, ModelSettings, make_api
from moot.models.scripted import ScriptedModel

litellm = litellm_api._import_litellm()

SECRET = "sk-secret-123-do-not-store"
KEY_ENV = "MOOT_TEST_KEY"
TAG = CallTag(episode=1, seat="judge", role="judge")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


Sink = RecordingSink


def request(content: str = "Say something.", **kw) -> GenerateRequest:
    return GenerateRequest(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        max_tokens=32,
        **kw,
    )


def test_cost_map_is_local():
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


# -- the scripted model through litellm's acompletion ----------------------------------


@pytest.mark.anyio
async def test_moot_scripted_through_litellm():
    settings = ModelSettings(max_concurrency=4)
    api = make_api("moot-scripted/x", settings)
    assert isinstance(api, litellm_api.LiteLLMModel)
    d = api.describe()
    assert d["provider"] == "litellm" and d["litellm"] == "1.106.2"

    sink = Sink()
    model = Model("moot-scripted/x", api, settings, sink)
    req = request("You argue for answer B: no. Go.")
    result, seq = await model.generate(req, TAG)

    direct = await ScriptedModel().generate(req)
    assert result.text == direct.text
    assert "answer B" in result.text
    assert result.prompt_tokens == direct.prompt_tokens > 0
    assert result.completion_tokens == direct.completion_tokens > 0
    assert result.label_logprobs is None

    (call,) = sink.calls
    assert call.seq == seq == 0
    assert call.model == "moot-scripted/x"
    assert call.response == direct.text
    assert call.prompt_tokens == direct.prompt_tokens
    assert call.completion_tokens == direct.completion_tokens
    assert call.attempts == 1 and call.error is None
    assert call.request == req


@pytest.mark.anyio
async def test_moot_scripted_is_reproducible_and_concurrent():
    import anyio

    settings = ModelSettings()
    sink = Sink()
    model = Model("moot-scripted/x", make_api("moot-scripted/x", settings), settings, sink)
    texts: dict[int, str] = {}

    async def one(i: int) -> None:
        result, _ = await model.generate(request(f"You argue for answer {'AB'[i % 2]}: x"), TAG)
        texts[i] = result.text

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert len(sink.calls) == 8
    assert sorted(c.seq for c in sink.calls) == list(range(8))
    for i, text in texts.items():
        assert f"answer {'AB'[i % 2]}" in text


# -- litellm's own mock_response -------------------------------------------------------


@pytest.mark.anyio
async def test_mock_response_offline(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = ModelSettings(params={"mock_response": "Answer: B"}, backoff=0.01)
    sink = Sink()
    model = Model("openai/gpt-4o-mini", make_api("openai/gpt-4o-mini", settings), settings, sink)
    result, _ = await model.generate(request(seed=3), TAG)
    assert result.text == "Answer: B"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.cost is not None and result.cost > 0  # priced from the local cost map
    (call,) = sink.calls
    assert call.response == "Answer: B"
    assert call.prompt_tokens == result.prompt_tokens
    assert call.completion_tokens == result.completion_tokens
    assert call.cost == result.cost
    assert call.request.seed == 3


@pytest.mark.anyio
async def test_judge_request_without_logprobs_falls_back_to_text(monkeypatch):
    """A server that gives no token probabilities: label_logprobs None, the text remains."""
    settings = ModelSettings(params={"mock_response": "Answer: B"})
    api = make_api("openai/gpt-4o-mini", settings)
    seen: dict = {}
    real = litellm.acompletion

    async def spy(**kwargs):
        seen.update(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", spy)
    result = await api.generate(request(answer_labels=("A", "B")))
    assert result.text == "Answer: B"
    assert result.label_logprobs is None
    assert seen["logprobs"] is True and seen["top_logprobs"] == 20
    assert seen["num_retries"] == 0  # retries belong to the gateway
    assert seen["max_tokens"] == 32


@pytest.mark.anyio
async def test_params_and_api_base_are_passed(monkeypatch):
    seen: dict = {}

    async def fake(**kwargs):
        seen.update(kwargs)
        return litellm.ModelResponse(
            model="m",
            choices=[{"message": {"role": "assistant", "content": "hi"}}],
            usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        )

    monkeypatch.setattr(litellm, "acompletion", fake)
    settings = ModelSettings(api_base="http://127.0.0.1:9/v1", params={"top_p": 0.5}, timeout=7)
    api = make_api("hosted_vllm/some-model", settings)
    assert api.describe()["api_base"] == "http://127.0.0.1:9/v1"
    result = await api.generate(request(seed=11))
    assert result.text == "hi" and result.prompt_tokens == 3 and result.completion_tokens == 1
    assert result.cost is None  # unknown price: recorded as unknown, not zero
    assert seen["api_base"] == "http://127.0.0.1:9/v1"
    assert seen["top_p"] == 0.5
    assert seen["timeout"] == 7
    assert seen["seed"] == 11
    assert seen["api_key"] == "no-key"  # a local server needs none; the OpenAI client wants one


# -- keys are never stored -------------------------------------------------------------


def assert_no_secret(*things) -> None:
    for thing in things:
        assert SECRET not in repr(thing), thing
        assert SECRET not in str(thing), thing


@pytest.mark.anyio
async def test_api_key_is_used_but_never_recorded(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    seen: dict = {}

    async def leaky(**kwargs):
        seen.update(kwargs)
        raise litellm.AuthenticationError(
            f"Incorrect API key provided: {kwargs.get('api_key')}. Check your key.",
            llm_provider="openai",
            model="gpt-4o-mini",
        )

    monkeypatch.setattr(litellm, "acompletion", leaky)
    settings = ModelSettings(api_key_env=KEY_ENV, backoff=0.01)
    api = make_api("openai/gpt-4o-mini", settings)
    sink = Sink()
    model = Model("openai/gpt-4o-mini", api, settings, sink)

    # The provider error itself: redacted, and not retryable.
    with pytest.raises(ProviderError) as perr:
        await api.generate(request())
    assert seen["api_key"] == SECRET  # the key was used
    assert perr.value.retryable is False
    assert "***" in str(perr.value)
    assert_no_secret(perr.value, "".join(traceback.format_exception(perr.value)))

    # Through the gateway: the failure and its record.
    with pytest.raises(ModelCallFailed) as failed:
        await model.generate(request(), TAG)
    (call,) = sink.calls
    assert call.error is not None and "AuthenticationError" in call.error
    assert call.attempts == 1
    assert_no_secret(
        failed.value,
        "".join(traceback.format_exception(failed.value)),
        call,
        call.error,
        call.request.record(),
        call.request.params_json(),
        api.describe(),
        settings,
    )


@pytest.mark.anyio
async def test_retryable_error_with_key_is_redacted_on_every_attempt(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    attempts = 0

    async def flaky(**kwargs):
        nonlocal attempts
        attempts += 1
        raise litellm.RateLimitError(
            f"too many requests for key {kwargs['api_key']}", llm_provider="openai", model="m"
        )

    monkeypatch.setattr(litellm, "acompletion", flaky)
    settings = ModelSettings(api_key_env=KEY_ENV, retries=2, backoff=0.001)
    sink = Sink()
    model = Model("openai/m", make_api("openai/m", settings), settings, sink)
    with pytest.raises(ModelCallFailed) as failed:
        await model.generate(request(), TAG)
    assert attempts == 3
    (call,) = sink.calls
    assert call.attempts == 3
    assert "RateLimitError" in call.error
    assert_no_secret(failed.value, call)


def test_missing_api_key_env_is_a_config_error(monkeypatch):
    monkeypatch.delenv("MOOT_TEST_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="MOOT_TEST_MISSING_KEY"):
        make_api("openai/gpt-4o-mini", ModelSettings(api_key_env="MOOT_TEST_MISSING_KEY"))


# -- error classification --------------------------------------------------------------


def classify(exc: Exception, secret: str | None = None) -> ProviderError:
    return litellm_api._classify(litellm, exc, secret)


def test_rate_limit_is_retryable():
    err = classify(litellm.RateLimitError("slow down", llm_provider="openai", model="m"))
    assert err.retryable is True
    assert err.retry_after is None
    assert "RateLimitError" in str(err) and "slow down" in str(err)


def test_authentication_error_is_not_retryable():
    err = classify(litellm.AuthenticationError("bad key", llm_provider="openai", model="m"))
    assert err.retryable is False


@pytest.mark.parametrize(
    "exc",
    [
        litellm.Timeout("timed out", model="m", llm_provider="openai"),
        litellm.APIConnectionError("refused", llm_provider="openai", model="m"),
        litellm.InternalServerError("oops", llm_provider="openai", model="m"),
        litellm.ServiceUnavailableError("down", llm_provider="openai", model="m"),
        litellm.APIError(502, "bad gateway", llm_provider="openai", model="m"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_are_retryable(exc):
    assert classify(exc).retryable is True


@pytest.mark.parametrize(
    "exc",
    [
        litellm.BadRequestError("bad", model="m", llm_provider="openai"),
        litellm.NotFoundError("no such model", model="m", llm_provider="openai"),
        ValueError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_are_not_retryable(exc):
    assert classify(exc).retryable is False


def test_any_5xx_status_is_retryable():
    class Weird(Exception):
        status_code = 503

    assert classify(Weird("x")).retryable is True


def response_429(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(
        429, headers=headers, request=httpx.Request("POST", "https://api.example/v1")
    )


def test_retry_after_header_is_parsed():
    exc = litellm.RateLimitError(
        "slow down", llm_provider="openai", model="m", response=response_429({"Retry-After": "7"})
    )
    err = classify(exc)
    assert err.retryable is True
    assert err.retry_after == 7.0


def test_retry_after_fractional():
    exc = litellm.RateLimitError(
        "x", llm_provider="openai", model="m", response=response_429({"retry-after": "0.5"})
    )
    assert classify(exc).retry_after == 0.5


def test_retry_after_as_an_http_date_counts_from_now():
    from email.utils import formatdate

    def after(value):
        exc = litellm.RateLimitError(
            "x", llm_provider="openai", model="m", response=response_429({"retry-after": value})
        )
        return classify(exc).retry_after

    assert 1.0 < after(formatdate(time.time() + 3, usegmt=True)) <= 3.0
    assert after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # already past: no extra wait


@pytest.mark.parametrize("value", ["soon", ""])
def test_unreadable_retry_after_is_ignored(value):
    exc = litellm.RateLimitError(
        "x", llm_provider="openai", model="m", response=response_429({"retry-after": value})
    )
    err = classify(exc)
    assert err.retryable is True
    assert err.retry_after is None


def test_retry_after_without_response_headers():
    class Bare(Exception):
        response = None

    assert classify(Bare("x")).retry_after is None


def test_retry_after_from_litellm_response_headers():
    # litellm's exception mapping does not always pass the provider's response on (its
    # Anthropic 429 path, for one); the provider's headers are then attached to the
    # exception as `litellm_response_headers`, and the Retry-After there should count.
    exc = litellm.RateLimitError("slow down", llm_provider="anthropic", model="m")
    exc.litellm_response_headers = httpx.Headers({"retry-after": "3"})
    assert classify(exc).retry_after == 3.0


def test_classify_redacts_secret_and_keeps_one_line():
    exc = litellm.AuthenticationError(
        f"bad key {SECRET} given\nsecond line {SECRET}", llm_provider="openai", model="m"
    )
    err = classify(exc, SECRET)
    assert SECRET not in str(err)
    assert "***" in str(err)
    assert "\n" not in str(err)
    assert len(str(classify(ValueError("x" * 2000)))) <= 500


# -- token probabilities from a litellm response ---------------------------------------


def test_label_logprobs_from_top_logprobs():
    choice = {
        "logprobs": {
            "content": [
                {"token": "Answer", "logprob": -0.01, "top_logprobs": []},
                {"token": ":", "logprob": -0.01, "top_logprobs": []},
                {
                    "token": " B",
                    "logprob": -0.4,
                    "top_logprobs": [
                        {"token": " B", "logprob": -0.4},
                        {"token": " A", "logprob": -1.2},
                        {"token": "A", "logprob": -3.0},
                        {"token": " C", "logprob": -4.0},
                    ],
                },
            ]
        }
    }
    import math

    out = litellm_api._label_logprobs(choice, ("A", "B"))
    assert out is not None
    assert out["B"] == pytest.approx(-0.4)
    assert out["A"] == pytest.approx(math.log(math.exp(-1.2) + math.exp(-3.0)))


def test_label_logprobs_absent():
    assert litellm_api._label_logprobs({"logprobs": None}, ("A", "B")) is None
    assert litellm_api._label_logprobs({}, ("A", "B")) is None
    no_label = {"logprobs": {"content": [{"token": "Hmm", "logprob": -0.1, "top_logprobs": []}]}}
    assert litellm_api._label_logprobs(no_label, ("A", "B")) is None
