"""lut_server."""
