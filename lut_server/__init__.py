"""lut_server: the central latency LUT (FastAPI + SQLAlchemy), job queue, tokens, export. Never imports torch."""

__version__ = "0.1.0"
