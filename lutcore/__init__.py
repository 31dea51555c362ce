"""lutcore: the vocabulary shared by the profiler agent, the LUT server and the search client.

Importable without torch (``lutcore.torch`` is the only part that needs it) and on Python 3.8.
"""

__version__ = "0.1.0"
