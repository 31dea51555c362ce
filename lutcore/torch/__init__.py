"""Torch modules for op specs and whole networks. The only part of lutcore that needs torch."""

from lutcore.torch.modules import build_op, example_inputs
from lutcore.torch.network import Network, build_network, network_input

__all__ = ["Network", "build_network", "build_op", "example_inputs", "network_input"]
