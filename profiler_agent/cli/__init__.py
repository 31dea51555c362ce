"""``profiler-agent``: the daemon (default), offline ``profile``/``sync``, ``flush``, ``probe``, ``backends``,
``validate``. One module per command; the steps they share with the daemon live in ``profiler_agent.workflows``.
Exit codes: ``profiler_agent.exit_codes``.
"""

from __future__ import annotations

from profiler_agent.cli.backend_flags import backend_options
from profiler_agent.cli.errors import UsageError
from profiler_agent.cli.machine import default_device_name, guess_device_class, sanitize_name
from profiler_agent.cli.main import main
from profiler_agent.cli.parser import build_parser
from profiler_agent.exit_codes import EXIT_AUTH, EXIT_ERROR, EXIT_OK, EXIT_PENDING, EXIT_USAGE

__all__ = [
    "EXIT_AUTH", "EXIT_ERROR", "EXIT_OK", "EXIT_PENDING", "EXIT_USAGE", "UsageError", "backend_options",
    "build_parser", "default_device_name", "guess_device_class", "main", "sanitize_name",
]
