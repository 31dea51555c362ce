"""Export an op (or a whole network) to ONNX: static shapes, batch as in the spec, fp32.

The same bytes feed TensorRT and ONNX Runtime. Inputs are named ``x`` (and ``low`` for the
two-input decoders), the output ``y``. The TorchScript exporter is used (``dynamo=False`` where
torch has the switch): it is the one every torch from 2.0 (JetPack 5) to today shares.
"""

from __future__ import annotations

import inspect
import io
import warnings
from typing import Any, Dict, List, Tuple

from lutcore.ops import OpSpec

OPSET = 17  # supported by TensorRT 8.5 .. 11 and ONNX Runtime >= 1.14 (per-channel Q/DQ needs >= 13)
INPUT_NAMES = ("x", "low")
OUTPUT_NAME = "y"


def input_names(n_inputs: int) -> List[str]:
    return list(INPUT_NAMES[:n_inputs])


def export_module(module: Any, inputs: Tuple[Any, ...], opset: int = OPSET) -> bytes:
    """ONNX bytes of ``module(*inputs)``, traced on the CPU in fp32, eval mode."""
    import torch

    module = module.eval().to("cpu", torch.float32)
    inputs = tuple(t.detach().to("cpu", torch.float32) for t in inputs)
    kwargs: Dict[str, Any] = {
        "input_names": input_names(len(inputs)),
        "output_names": [OUTPUT_NAME],
        "opset_version": opset,
        "do_constant_folding": True,
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the TorchScript exporter
        torch.onnx.export(module, inputs, buf, **kwargs)  # type: ignore[arg-type]  # a file object works
    return buf.getvalue()


def export_op(spec: OpSpec, opset: int = OPSET) -> Tuple[bytes, Tuple[Any, ...]]:
    """(ONNX bytes, the example inputs used) for one op spec."""
    from lutcore.torch import build_op, example_inputs

    inputs = example_inputs(spec)
    return export_module(build_op(spec), inputs, opset), inputs


def export_network(arch: Any, opset: int = OPSET) -> Tuple[bytes, Tuple[Any, ...]]:
    from lutcore.torch import build_network, network_input

    x = network_input(arch)
    return export_module(build_network(arch), (x,), opset), (x,)
