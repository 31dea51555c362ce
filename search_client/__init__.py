"""search_client."""
