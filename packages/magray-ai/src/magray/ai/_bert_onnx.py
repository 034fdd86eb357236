"""A BERT encoder as an ONNX graph, built with ``onnx.helper`` from numpy weights.

The graph computes exactly what Hugging Face's BERT computes (post-LayerNorm
encoder, exact erf GELU, additive attention mask); its output is
``last_hidden_state`` for embedding models and ``logits`` for cross-encoders.
Position ids come from slicing the position table with the sequence length
taken as ``Shape(start=1, end=2)``: the ``Shape → Gather → Range`` pattern
makes onnxruntime 1.32's optimiser emit an invalid ``Slice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from magray.ai.errors import ConversionError

__all__ = ["BertConfig", "build_bert_onnx"]


@dataclass(frozen=True)
class BertConfig:
    """The ``config.json`` fields the graph needs."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BertConfig:
        model_type = data.get("model_type", "bert")
        if model_type not in ("bert",):
            raise ConversionError(
                f"model_type {model_type!r} is not supported (only BERT-family encoders)",
                hint="bge-small, e5-small, all-MiniLM and ms-marco-MiniLM models are BERT-family",
            )
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ConversionError("only absolute position embeddings are supported")
        act = data.get("hidden_act", "gelu")
        if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
            raise ConversionError(f"activation {act!r} is not supported")
        try:
            return cls(
                hidden_size=int(data["hidden_size"]),
                num_hidden_layers=int(data["num_hidden_layers"]),
                num_attention_heads=int(data["num_attention_heads"]),
                intermediate_size=int(data["intermediate_size"]),
                max_position_embeddings=int(data["max_position_embeddings"]),
                layer_norm_eps=float(data.get("layer_norm_eps", 1e-12)),
                hidden_act=act,
            )
        except KeyError as exc:
            raise ConversionError(f"config.json lacks {exc}") from exc


def _strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    result = {}
    for name, value in weights.items():
        key = name
        for prefix in ("bert.", "model.", "0.auto_model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        result[key] = value
    return result


def build_bert_onnx(
    config: BertConfig, weights: dict[str, np.ndarray], *, task: Literal["embed", "rerank"]
) -> Any:
    """The ONNX ``ModelProto`` of a BERT encoder (+ pooler/classifier for ``rerank``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = _strip_prefix(weights)
    h, heads = config.hidden_size, config.num_attention_heads
    head_dim = h // heads
    nodes: list[Any] = []
    inits: dict[str, np.ndarray] = {}
    counter = [0]

    def init(name: str, value: np.ndarray) -> str:
        inits[name] = value
        return name

    def weight(name: str) -> str:
        if name not in w:
            raise ConversionError(
                f"weight {name!r} is missing from the safetensors file",
                hint="the folder is not a BERT-family model, or it is incomplete",
            )
        return init(name, np.ascontiguousarray(w[name], dtype=np.float32))

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        counter[0] += 1
        out = f"{kind.lower()}_{counter[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        if f"{prefix}.weight" not in w:
            raise ConversionError(
                f"weight {prefix}.weight is missing from the safetensors file",
                hint="the folder is not a BERT-family model, or it is incomplete",
            )
        matrix = np.ascontiguousarray(w[f"{prefix}.weight"].T, dtype=np.float32)
        transposed = init(f"{prefix}.weight_t", matrix)
        return op("Add", [op("MatMul", [x, transposed]), weight(f"{prefix}.bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return op(
            "LayerNormalization",
            [x, weight(f"{prefix}.weight"), weight(f"{prefix}.bias")],
            axis=-1,
            epsilon=config.layer_norm_eps,
        )

    def gelu(x: str) -> str:
        if config.hidden_act == "gelu":  # exact: 0.5 * x * (1 + erf(x / sqrt(2)))
            scaled = op("Div", [x, init("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))])
            erf = op("Add", [op("Erf", [scaled]), init("one", np.array(1.0, dtype=np.float32))])
            return op("Mul", [op("Mul", [x, erf]), init("half", np.array(0.5, dtype=np.float32))])
        # tanh approximation used by gelu_new / gelu_pytorch_tanh
        cube = op("Mul", [op("Mul", [x, x]), x])
        inner = op(
            "Add", [x, op("Mul", [cube, init("c044", np.array(0.044715, dtype=np.float32))])]
        )
        tanh = op(
            "Tanh",
            [op("Mul", [inner, init("c_sqrt2pi", np.array(np.sqrt(2 / np.pi), dtype=np.float32))])],
        )
        plus = op("Add", [tanh, init("one", np.array(1.0, dtype=np.float32))])
        return op("Mul", [op("Mul", [x, plus]), init("half", np.array(0.5, dtype=np.float32))])

    # --- embeddings
    word = op("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"])
    seq_len = op("Shape", ["input_ids"], start=1, end=2)  # shape [1]
    positions = op(
        "Slice",
        [
            weight("embeddings.position_embeddings.weight"),
            init("zero_1d", np.array([0], dtype=np.int64)),
            seq_len,
            init("zero_1d", np.array([0], dtype=np.int64)),
        ],
    )
    types = op("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])
    hidden = layer_norm(op("Add", [op("Add", [word, positions]), types]), "embeddings.LayerNorm")

    # --- additive attention mask, shape [batch, 1, 1, seq]
    mask_f = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = op("Sub", [init("one", np.array(1.0, dtype=np.float32)), mask_f])
    additive = op("Mul", [inverted, init("mask_value", np.array(-1e9, dtype=np.float32))])
    additive = op("Unsqueeze", [additive, init("axes_1_2", np.array([1, 2], dtype=np.int64))])

    split_shape = init("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = init("merge_heads", np.array([0, 0, h], dtype=np.int64))
    scale = init("attn_scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))

    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}"

        def heads_of(x: str, perm: list[int]) -> str:
            return op("Transpose", [op("Reshape", [x, split_shape])], perm=perm)

        q = heads_of(linear(hidden, f"{p}.attention.self.query"), [0, 2, 1, 3])
        k = heads_of(linear(hidden, f"{p}.attention.self.key"), [0, 2, 3, 1])
        v = heads_of(linear(hidden, f"{p}.attention.self.value"), [0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), additive])
        probs = op("Softmax", [scores], axis=-1)
        context = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = op("Reshape", [context, merge_shape])
        attended = linear(context, f"{p}.attention.output.dense")
        hidden = layer_norm(op("Add", [attended, hidden]), f"{p}.attention.output.LayerNorm")
        inner = gelu(linear(hidden, f"{p}.intermediate.dense"))
        out = linear(inner, f"{p}.output.dense")
        hidden = layer_norm(op("Add", [out, hidden]), f"{p}.output.LayerNorm")

    dynamic = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, dynamic)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    if task == "embed":
        nodes.append(helper.make_node("Identity", [hidden], ["last_hidden_state"]))
        outputs = [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dynamic, h])
        ]
    else:
        if "classifier.weight" not in w:
            raise ConversionError(
                "a reranker needs a classification head (classifier.weight) in the weights",
                hint="import a cross-encoder (BertForSequenceClassification), or use --task embed",
            )
        cls = op("Gather", [hidden, init("zero_scalar", np.array(0, dtype=np.int64))], axis=1)
        pooled = op("Tanh", [linear(cls, "pooler.dense")]) if "pooler.dense.weight" in w else cls
        logits = linear(pooled, "classifier")
        nodes.append(helper.make_node("Identity", [logits], ["logits"]))
        labels = int(w["classifier.weight"].shape[0])
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])]

    graph = helper.make_graph(
        nodes,
        "magray-bert",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(v, name) for name, v in inits.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="magray-ai",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
