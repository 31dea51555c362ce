"""Latency predictions for LUT entries nobody measured, each with a calibrated interval (issue 20).

Torch-free: numpy, SciPy, scikit-learn and LightGBM (the server extra). ``Predictor`` fits one target's
measured entries; ``evaluation`` scores it against a fully measured LUT; ``cli`` is ``lut predictor``.
"""

from typing import TYPE_CHECKING, Any

from lut_server.predictor.errors import PredictorError

if TYPE_CHECKING:
    from lut_server.predictor.model import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "PredictorError"]


def __getattr__(name: str) -> Any:
    """The model on first use: importing numpy and LightGBM costs every server start ~0.3 s of CPU,
    and most servers never predict."""
    if name in ("Prediction", "Predictor"):
        from lut_server.predictor import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
