"""What differs between the TensorRT versions the agent supports (8.5 <= TensorRT < 12).

8.5 is the floor: it is the first release with the named-tensor API (``num_io_tensors``,
``set_tensor_address``, ``execute_async_v3``) that 10 and 11 kept as the only one. 10 added
strongly typed networks; 11 removed the weak-typing switches (``BuilderFlag.FP16``/``INT8``,
calibrators, ``set_dynamic_range``). One recipe serves all three: the precision lives in the
ONNX (a typed fp16 export, explicit Q/DQ with fixed scales for int8); 10 and later build it
strongly typed, 8.5 and 9 build it weakly typed with the flags that let the typed ONNX's
kernels run. Nothing here imports tensorrt: functions take the module, so fakes can stand in.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple

MIN_VERSION = (8, 5)
MAX_MAJOR = 11  # 12 is untested: refused rather than guessed at


class UnsupportedTensorRT(RuntimeError):
    """The installed TensorRT is outside 8.5 <= version < 12."""


def parse_version(text: str) -> Tuple[int, int]:
    m = re.match(r"\s*(\d+)\.(\d+)", str(text))
    if not m:
        raise UnsupportedTensorRT(f"cannot read a TensorRT version from {text!r}")
    return int(m.group(1)), int(m.group(2))


def support_problem(version: str) -> Optional[str]:
    """None for a supported version, else why it is not (names the version)."""
    try:
        v = parse_version(version)
    except UnsupportedTensorRT as e:
        return str(e)
    if v < MIN_VERSION:
        return (
            f"TensorRT {version} is older than 8.5 (JetPack 5.0.x ships 8.4): it lacks the named-tensor API "
            "(num_io_tensors, execute_async_v3) the agent uses; upgrade to JetPack >= 5.1 / TensorRT >= 8.5"
        )
    if v[0] > MAX_MAJOR:
        return f"TensorRT {version} is newer than the supported 8.5 .. 11.x; the agent has not been checked against it"
    return None


def check_supported(version: str) -> Tuple[int, int]:
    problem = support_problem(version)
    if problem is not None:
        raise UnsupportedTensorRT(problem)
    return parse_version(version)


def strongly_typed(trt: Any) -> bool:
    """10 and later build strongly typed (11 only can); 8.5 and 9 build weakly typed."""
    major = parse_version(trt.__version__)[0]
    if major >= 11:
        return True
    return major >= 10 and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


def network_flags(trt: Any) -> int:
    """Creation flags: EXPLICIT_BATCH before 10 (required), STRONGLY_TYPED where it exists from 10."""
    flags = trt.NetworkDefinitionCreationFlag
    if parse_version(trt.__version__)[0] < 10:
        return 1 << int(flags.EXPLICIT_BATCH)
    if hasattr(flags, "STRONGLY_TYPED"):
        return 1 << int(flags.STRONGLY_TYPED)
    return 0  # 11 without the flag: strong typing is always on


def precision_flags(trt: Any, precision: str) -> List[str]:
    """BuilderFlag names a weakly typed build needs to run the typed ONNX's low-precision kernels.

    Strongly typed builds take the types from the network and must not set any (11 has none).
    Q/DQ int8 networks need INT8 on 8.5/9; FP16 is not added, so the layers outside Q/DQ pairs
    keep the ONNX's fp32 there as they do in a strongly typed build: the same kernels on all versions.
    """
    if strongly_typed(trt):
        return []
    return {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}[precision]


def set_flags(trt: Any, config: Any, precision: str, tf32: bool) -> None:
    for name in precision_flags(trt, precision):
        config.set_flag(getattr(trt.BuilderFlag, name))
    if not tf32 and hasattr(trt.BuilderFlag, "TF32"):  # on by default: fp32 means fp32
        config.clear_flag(trt.BuilderFlag.TF32)


# Formats the builder may hand between two layers of a deployed network, per precision: the
# per-op engine may take and give any of them, as its neighbours would, so it adds no reformat
# the network does not have.
HANDOVER_FORMATS = {
    "fp32": ("LINEAR",),
    "fp16": ("LINEAR", "CHW2", "HWC8", "CHW16"),
    "int8": ("LINEAR", "CHW4", "CHW32"),
}


def handover_format_mask(trt: Any, precision: str) -> int:
    mask = 0
    for name in HANDOVER_FORMATS[precision]:
        fmt = getattr(trt.TensorFormat, name, None)
        if fmt is not None:
            mask |= 1 << int(fmt)
    return mask
