"""Latency predictions for LUT entries nobody measured, each with a calibrated interval (issue 20).

Torch-free: numpy, SciPy, scikit-learn and LightGBM (the server extra). ``Predictor`` fits one target's
measured entries; ``evaluation`` scores it against a fully measured LUT; ``cli`` is ``lut predictor``.
"""

from lut_server.predictor.errors import PredictorError
from lut_server.predictor.model import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "PredictorError"]
