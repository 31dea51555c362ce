"""search_client: the cost matrix C(i, j) from a LUT server or file, and resource-aware losses.

    client = LUTClient("http://lut:8000")            # or LUTClient.from_file("lut.json")
    cm = client.cost_matrix("squeezenas-small", "xavier/tensorrt/fp16", resolution="512x1024")
    loss = ExpectedCostLoss(cm.C, cm.mask, cm.fixed)  # sum_ij p_ij C_ij + fixed
"""

from search_client.cells import (
    CellBound,
    CellCosts,
    CellLatencyLoss,
    cell_costs_from_response,
    cell_costs_from_values,
    predict_cell_latency,
)
from search_client.client import Lookup, LUTClient, Predicted
from search_client.errors import (
    ClientError,
    MeasurementFailed,
    MissingEntriesError,
    ServerError,
    StaleCalibrationWarning,
    TransportError,
    WaitTimeout,
)
from search_client.losses import ExpectedCostLoss, TargetLatencyLoss
from search_client.matrix import CostMatrix, FixedCost, mac_matrix, param_matrix
from search_client.predict import Calibration, LatencyPrediction, parse_calibration
from search_client.prune import PrunedMatrix, prune_candidates
from search_client.sampling import gumbel_softmax, masked_logits, masked_softmax

__all__ = [
    "Calibration",
    "CellBound",
    "CellCosts",
    "CellLatencyLoss",
    "ClientError",
    "CostMatrix",
    "ExpectedCostLoss",
    "FixedCost",
    "LUTClient",
    "LatencyPrediction",
    "MeasurementFailed",
    "Lookup",
    "MissingEntriesError",
    "Predicted",
    "PrunedMatrix",
    "ServerError",
    "StaleCalibrationWarning",
    "TargetLatencyLoss",
    "TransportError",
    "WaitTimeout",
    "cell_costs_from_response",
    "cell_costs_from_values",
    "gumbel_softmax",
    "mac_matrix",
    "masked_logits",
    "masked_softmax",
    "param_matrix",
    "parse_calibration",
    "predict_cell_latency",
    "predict_latency",
    "prune_candidates",
]


def predict_latency(space, choices, target=None, *, client=None, **kw):
    """Module-level form of ``LUTClient.predict_latency``; ``client`` is the LUTClient to ask."""
    if client is None:
        raise TypeError("predict_latency needs client=LUTClient(...) or LUTClient.from_file(...)")
    return client.predict_latency(space, choices, target, **kw)
