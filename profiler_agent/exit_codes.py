"""The agent's exit codes, for the CLI and the daemon alike (the CLI's epilog lists them)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # an error the message explains
EXIT_USAGE = 2  # a missing or inconsistent option
EXIT_AUTH = 3  # the server refused the token (401/403)
EXIT_PENDING = 4  # the server could not be reached; results wait in the spool
EXIT_INTERRUPTED = 130

EPILOG = "exit codes: 0 ok, 1 error, 2 usage, 3 token refused (401/403), 4 results left in the spool"
