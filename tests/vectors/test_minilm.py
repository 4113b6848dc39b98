"""The [minilm] extra: the real all-MiniLM-L6-v2 int8 ONNX model, its vendored tokenizer, and its
selection by settings. The extra is part of the dev install, so these tests fail (not skip) without it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from vectors.embedders import default_embedder
from vectors.minilm import MAX_TOKENS, MISSING_EXTRA, TOKENIZER_PATH, MiniLMEmbedder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])  # the one model load (~0.3 s) happens here, once for the module
    return embedder


def cosine(embedder: MiniLMEmbedder, a: str, b: str) -> float:
    first, second = embedder.embed([a, b])
    return float(first @ second)


def ranking(embedder: MiniLMEmbedder, query: str, docs: list[str]) -> list[str]:
    query_vector = embedder.embed([query])[0]
    scores = embedder.embed(docs) @ query_vector
    return [docs[i] for i in np.argsort(-scores)]


DOCS = [
    "The deployment uses port 8080 for the API server",
    "Alice prefers green tea in the morning",
    "The database backups run every night at 2am",
    "Our office is located in Berlin",
    "The cat sleeps on the sofa",
]


def test_minilm_returns_unit_float32_rows(minilm):
    vectors = minilm.embed(["hello world", "A much longer sentence about the memory server and its tests.", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.dims == 384
    assert minilm.model_id == "minilm-l6-int8-1.0.0"
    assert repr(minilm) == "<MiniLMEmbedder minilm-l6-int8-1.0.0>"


def test_minilm_empty_input_gives_zero_rows(minilm):
    vectors = minilm.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_minilm_refuses_a_bare_string_and_non_strings(minilm):
    with pytest.raises(TypeError, match="single string"):
        minilm.embed("hello")
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        minilm.embed(["hello", None])


def test_minilm_scores_a_paraphrase_far_above_an_unrelated_sentence(minilm):
    # The sentence-transformers documentation's example (this int8 model: 0.75 and -0.04).
    bread = cosine(minilm, "A man is eating food.", "A man is eating a piece of bread.")
    movie = cosine(minilm, "A man is eating food.", "The new movie is awesome")
    assert bread > 0.6
    assert movie < 0.2
    assert bread - movie > 0.5


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("which port does the service listen on", 0),
        ("what does she like to drink before work", 1),
        ("when are the backups taken", 2),
        ("where is the company's headquarters", 3),
        ("where does the pet nap", 4),
    ],
)
def test_minilm_finds_english_paraphrases(minilm, query, index):
    assert ranking(minilm, query, DOCS)[0] == DOCS[index]


def test_minilm_keeps_input_order_whatever_the_lengths(minilm):
    # Texts run sorted by length in groups; the rows must still come back in input order.
    texts = ["short", "a " * 300 + "very long one", "medium length sentence here", "", "tiny"]
    together = minilm.embed(texts)
    for row, text in zip(together, texts, strict=True):
        np.testing.assert_allclose(row, minilm.embed([text])[0], atol=1e-5)


def test_minilm_batches_give_the_same_vectors_as_one_by_one(minilm):
    texts = [
        f"memory {i}: the user mentioned project {i % 3} and a deadline on day {i}" + " and more" * (i % 9)
        for i in range(70)
    ]
    texts[5] = "word " * 400  # one text at the length limit among short ones
    one_by_one = np.stack([minilm.embed([text])[0] for text in texts])
    np.testing.assert_allclose(minilm.embed(texts), one_by_one, atol=1e-5)  # 64 + 6
    np.testing.assert_allclose(MiniLMEmbedder(batch_size=4).embed(texts), one_by_one, atol=1e-5)


def test_minilm_truncates_long_texts_to_the_model_limit(minilm):
    # "word" is one word piece; [CLS] and [SEP] take the other two of the 256 positions.
    long, limit, shorter = minilm.embed(["word " * 5000, "word " * (MAX_TOKENS - 2), "word " * (MAX_TOKENS - 3)])
    assert np.isfinite(long).all()
    np.testing.assert_allclose(long, limit, atol=1e-5)
    assert not np.allclose(long, shorter, atol=1e-5)
    # Lots of text without spaces or in other scripts goes through the tokenizer's limits too.
    unusual = minilm.embed(["x" * 100_000, "数据库每晚两点备份" * 2000, "🙂" * 10_000])
    np.testing.assert_allclose(np.linalg.norm(unusual, axis=1), 1.0, atol=1e-5)


def test_minilm_thread_count_does_not_change_the_vectors(minilm):
    texts = [*DOCS, "A man is eating food."]
    single_thread = MiniLMEmbedder(threads=1)
    assert single_thread.threads == 1
    np.testing.assert_allclose(single_thread.embed(texts), minilm.embed(texts), atol=1e-5)


def test_minilm_is_safe_to_call_from_several_threads(minilm):
    texts = [f"thread safety sentence number {i} about caching and queues" for i in range(20)] + DOCS
    expected = minilm.embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work() -> None:
        try:
            start.wait()
            for _ in range(2):
                results.append(minilm.embed(texts))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 12
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_minilm_validates_its_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        MiniLMEmbedder(threads=0)


def test_the_vendored_tokenizer_ships_with_its_license():
    folder = TOKENIZER_PATH.parent
    assert TOKENIZER_PATH.stat().st_size == 466_247
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "all-MiniLM-L6-v2" in (folder / "NOTICE").read_text()


# --- Selection by settings ------------------------------------------------------------------------


def test_default_embedder_is_minilm_when_chosen():
    with override_settings(MEMORYHUB_EMBEDDER="minilm", MEMORYHUB_EMBEDDINGS_BATCH_SIZE=3):
        embedder = default_embedder()
        assert isinstance(embedder, MiniLMEmbedder)
        assert embedder.batch_size == 3
        assert default_embedder() is embedder
        assert embedder.embed(["a", "b", "c", "d"]).shape == (4, 384)
    assert not isinstance(default_embedder(), MiniLMEmbedder)


def test_minilm_without_the_extra_says_how_to_install_it(monkeypatch):
    # A None entry in sys.modules is how Python marks a module that cannot be imported.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImproperlyConfigured) as caught:
        MiniLMEmbedder()
    assert str(caught.value) == MISSING_EXTRA
    assert "pip install 'memoryhub[minilm]'" in str(caught.value)
    with override_settings(MEMORYHUB_EMBEDDER="minilm"), pytest.raises(ImproperlyConfigured, match=r"\[minilm\]"):
        default_embedder()


def test_the_environment_variable_selects_minilm(tmp_path):
    env = {
        **os.environ,
        "MEMORYHUB_EMBEDDER": "minilm",
        "MEMORYHUB_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
    }
    script = (
        "import django; django.setup(); from vectors.embedders import default_embedder; "
        "embedder = default_embedder(); print(embedder.model_id, embedder.embed(['hello']).shape)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["minilm-l6-int8-1.0.0", "(1,", "384)"]
