"""The network-sum rule lives in ``lutcore.netsum``: the server's predictor and search_client share it."""

from lutcore.netsum import RULES, NetworkSum, network_sum

__all__ = ["RULES", "NetworkSum", "network_sum"]
