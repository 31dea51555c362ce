"""Typed ONNX: the precision written into the model, so TensorRT 8.5 to 11 build the same kernels.

``to_fp16``: every float tensor, input and output becomes fp16 (a typed export: what a strongly
typed TensorRT 10/11 build needs, and what 8.5 builds with ``FP16``). ``to_int8_qdq``: explicit
quantization with fixed scales: Q/DQ pairs on the activations and weights of every conv/GEMM,
an int8 input followed by DequantizeLinear and an int8 output made by QuantizeLinear, so the
engine takes and gives int8 as its neighbours in an int8 network hand over. Scales are fixed
(activations +-``ACT_RANGE``, weights per output channel from their maximum): the speed does
not depend on them, and no calibration data or removed calibrator API is needed.
Works on the fp32 export of ``onnx_export`` and needs the ``onnx`` package (not torch).
"""

from __future__ import annotations

from typing import Any, Dict, List, Set

ACT_RANGE = 4.0
QUANTIZED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Inputs that must stay fp32 whatever the model's precision (Resize's scales).
FP32_ONLY_INPUTS = {"Resize": (2,)}


def _onnx() -> Any:
    import onnx

    return onnx


def _fp32_only(model: Any) -> Set[str]:
    keep: Set[str] = set()
    for node in model.graph.node:
        for i in FP32_ONLY_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i]:
                keep.add(node.input[i])
    return keep


def to_fp16(onnx_bytes: bytes) -> bytes:
    """The fp32 model with fp16 weights, constants, casts, inputs and outputs."""
    onnx = _onnx()
    import numpy as np
    from onnx import TensorProto, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    keep = _fp32_only(model)

    def half(t: Any) -> Any:
        out = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name)
        return out

    for i, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            g.initializer[i].CopyFrom(half(init))
    for node in g.node:
        for attr in node.attribute:
            is_float_constant = node.op_type == "Constant" and attr.name == "value"
            if is_float_constant and attr.t.data_type == TensorProto.FLOAT and node.output[0] not in keep:
                attr.t.CopyFrom(half(attr.t))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]  # stale fp32 annotations; TensorRT and checkers infer them again
    return model.SerializeToString()


def _scale(name: str, value: Any) -> Any:
    import numpy as np
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _zero(name: str, n: int) -> Any:
    import numpy as np
    from onnx import numpy_helper

    value: Any = np.zeros(n, dtype=np.int8) if n else np.asarray(np.int8(0))
    return numpy_helper.from_array(value, name)


def to_int8_qdq(onnx_bytes: bytes, act_range: float = ACT_RANGE) -> bytes:
    """Explicit quantization with fixed scales (see the module docstring); returns ONNX bytes."""
    onnx = _onnx()
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    inits: Dict[str, Any] = {t.name: t for t in g.initializer}
    act_scale, act_zero = "qdq_act_scale", "qdq_act_zero"
    new_inits: List[Any] = [_scale(act_scale, act_range / 127.0), _zero(act_zero, 0)]
    nodes: List[Any] = []
    count = [0]

    def qdq(src: str, scale: str, zero: str, axis: Any = None) -> str:
        count[0] += 1
        q, dq = f"{src}_q{count[0]}", f"{src}_dq{count[0]}"
        kw = {} if axis is None else {"axis": axis}
        nodes.append(helper.make_node("QuantizeLinear", [src, scale, zero], [q], name=f"{q}_Q", **kw))
        nodes.append(helper.make_node("DequantizeLinear", [q, scale, zero], [dq], name=f"{dq}_DQ", **kw))
        return dq

    # int8 graph inputs, dequantized once at the top
    renamed: Dict[str, str] = {}
    for v in g.input:
        if v.name in inits or v.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        fp = f"{v.name}_fp"
        nodes.append(helper.make_node("DequantizeLinear", [v.name, act_scale, act_zero], [fp], name=f"{fp}_DQ"))
        renamed[v.name] = fp
        v.type.tensor_type.elem_type = TensorProto.INT8
    outputs = {v.name for v in g.output}
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        for i, name in enumerate(node.output):
            if name in outputs:
                node.output[i] = f"{name}_fp"
        if node.op_type in QUANTIZED_OPS:
            if node.input[0] not in inits:
                node.input[0] = qdq(node.input[0], act_scale, act_zero)
            w = inits.get(node.input[1]) if len(node.input) > 1 else None
            if w is not None and w.data_type == TensorProto.FLOAT:
                arr = numpy_helper.to_array(w)
                if node.op_type == "Conv" and arr.ndim >= 2:
                    per = np.abs(arr.reshape(arr.shape[0], -1)).max(axis=1)
                    s_name, z_name = f"{w.name}_scale", f"{w.name}_zero"
                    new_inits += [_scale(s_name, np.maximum(per, 1e-8) / 127.0), _zero(z_name, arr.shape[0])]
                    node.input[1] = qdq(w.name, s_name, z_name, axis=0)
                else:
                    s_name, z_name = f"{w.name}_scale", f"{w.name}_zero"
                    new_inits += [_scale(s_name, max(float(np.abs(arr).max()), 1e-8) / 127.0), _zero(z_name, 0)]
                    node.input[1] = qdq(w.name, s_name, z_name)
        nodes.append(node)
    for v in g.output:
        q = helper.make_node("QuantizeLinear", [f"{v.name}_fp", act_scale, act_zero], [v.name], name=f"{v.name}_Q")
        nodes.append(q)
        v.type.tensor_type.elem_type = TensorProto.INT8
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    del g.value_info[:]
    return model.SerializeToString()


def typed(onnx_bytes: bytes, precision: str) -> bytes:
    """The export for ``precision``: fp32 as is, fp16 typed, int8 with explicit Q/DQ."""
    if precision == "fp32":
        return onnx_bytes
    if precision == "fp16":
        return to_fp16(onnx_bytes)
    if precision == "int8":
        return to_int8_qdq(onnx_bytes)
    raise ValueError(f"no typed export for precision {precision!r}")


def io_dtypes(onnx_bytes: bytes) -> Dict[str, str]:
    """Input/output name -> numpy dtype name, as the typed model declares them."""
    onnx = _onnx()
    from onnx import helper

    g = onnx.load_from_string(onnx_bytes).graph
    init = {t.name for t in g.initializer}
    out: Dict[str, str] = {}
    for v in list(g.input) + list(g.output):
        if v.name not in init:
            out[v.name] = str(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type))
    return out


def node_names(onnx_bytes: bytes) -> List[str]:
    return [n.name for n in _onnx().load_from_string(onnx_bytes).graph.node]
