"""One typed REST client of the LUT server for every caller (agent, search client, ``lut`` command)."""

from lutcore.rest.client import API_PREFIX, RestClient, api_root
from lutcore.rest.errors import AuthError, BadResponse, Rejected, RestError, ServerFault, Unavailable
from lutcore.rest.policy import RETRY_STATUS, RetryPolicy

__all__ = [
    "API_PREFIX",
    "RETRY_STATUS",
    "AuthError",
    "BadResponse",
    "Rejected",
    "RestClient",
    "RestError",
    "RetryPolicy",
    "ServerFault",
    "Unavailable",
    "api_root",
]
