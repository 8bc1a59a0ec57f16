"""Export the packaged MiniLM encoder to ONNX and quantise it to int8, offline, once per machine.

`torch.onnx` traces the packaged transformer (no download); `onnxruntime.quantization` quantises
the MatMul weights per channel to int8 (per-tensor quantisation of every op type loses too much:
mean cosine to fp32 0.95 here against 0.99). The exported file is checked against the fp32
transformer on fixed sentences before it is used: a file whose cosine falls below `MIN_COSINE` is
rejected, never silently used.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policylab.errors import PolicylabError

log = logging.getLogger(__name__)

OPSET = 17
MIN_COSINE = 0.98
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

# Varied lengths and registers, so the check exercises padding and truncation.
CHECK_SENTENCES = (
    "I'm sorry, but I can't help with that.",
    "Sure! Here is a step-by-step recipe for banana bread: mash three ripe bananas, mix in melted "
    "butter, sugar, an egg and flour, then bake for an hour at 175 °C.",
    "As an AI language model, I don't have personal opinions, but here are some perspectives.",
    "It is not accurate or fair to generalise about an entire group of people.",
    "The mitochondrion is the powerhouse of the cell.",
    "I can't give medical advice, but please talk to a doctor or pharmacist about the dose.",
    "def add(a, b):\n    return a + b",
    "Voici une réponse en français, pour vérifier que le modèle gère d'autres langues.",
    "ok",
    " ".join(["This sentence repeats to exceed the truncation length."] * 40),
)


def mean_pool(hidden: NDArray[np.float32], mask: NDArray[np.int64]) -> NDArray[np.float32]:
    """Mean of the token vectors under the attention mask, L2-normalised (as sentence-transformers)."""
    m = mask[..., None].astype(np.float32)
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    out: NDArray[np.float32] = (pooled / norms).astype(np.float32)
    return out


def export_onnx(
    model_dir: Path, target: Path, *, quantize: bool, tokenizer: Any, max_tokens: int
) -> Path:
    """Write the encoder as ONNX to `target` (int8 when `quantize`), after checking it."""
    import torch
    from transformers import AutoModel

    target.parent.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    # The reference is computed before the export: tracing leaves the PyTorch module in a state
    # whose outputs differ (cosine 0.93 here), which would fail a correct ONNX file.
    reference = _torch_embeddings(model, tokenizer, max_tokens)

    class _Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # Trace with a padded row: the case every batch but the shortest has.
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "encoder.onnx"
        with warnings.catch_warnings():
            # Tracer notes about Python booleans in the attention-mask code: the result is checked
            # against the PyTorch model below, which is what matters.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(model),
                (ids, mask, torch.zeros_like(ids)),
                str(fp32),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        out = fp32
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            out = Path(tmp) / "encoder.int8.onnx"
            quantize_dynamic(
                str(fp32),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        got = onnx_embeddings(session(out, threads=1), tokenizer, CHECK_SENTENCES, max_tokens)
        cosine = (reference * got).sum(axis=1)
        if float(cosine.mean()) < MIN_COSINE:
            raise PolicylabError(
                f"the exported ONNX encoder agrees with the PyTorch model at mean cosine "
                f"{cosine.mean():.4f}, below {MIN_COSINE}",
                hint="use the `torch` embedding backend, or report this with your onnxruntime version",
            )
        log.info("exported %s (mean cosine to fp32 %.4f)", target.name, cosine.mean())
        os.replace(out, target)  # atomic: a concurrent process sees the whole file or none
    return target


def _torch_embeddings(model: Any, tokenizer: Any, max_tokens: int) -> NDArray[np.float32]:
    import torch

    ids, mask = batch_arrays(tokenizer, list(CHECK_SENTENCES), max_tokens)
    with torch.no_grad():
        hidden = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
        ).last_hidden_state.numpy()
    return mean_pool(hidden, mask)


def session(path: Path, *, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def batch_arrays(
    tokenizer: Any, texts: list[str], max_tokens: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Token ids and attention mask, padded to the longest text of the batch (not to a fixed size)."""
    encodings = tokenizer.encode_batch(texts)
    width = max(1, max(min(len(e.ids), max_tokens) for e in encodings))
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for row, enc in enumerate(encodings):
        n = min(len(enc.ids), max_tokens)
        ids[row, :n] = enc.ids[:n]
        mask[row, :n] = 1
    return ids, mask


def onnx_embeddings(
    sess: Any, tokenizer: Any, texts: tuple[str, ...] | list[str], max_tokens: int
) -> NDArray[np.float32]:
    ids, mask = batch_arrays(tokenizer, list(texts), max_tokens)
    hidden = sess.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )
    return mean_pool(hidden[0], mask)
