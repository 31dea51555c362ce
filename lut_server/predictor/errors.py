"""The predictor's one error type, a ``LutError`` so that `lut` prints it as one `lut: error:` line, and the
fewest measured ops a fit accepts (below it, that error)."""

from __future__ import annotations

from lutcore.errors import LutError


class PredictorError(LutError):
    """The predictor cannot be fitted or used as asked (too few entries, bad values, an unknown op family)."""


MIN_TRAIN = 8
