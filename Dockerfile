# syntax=docker/dockerfile:1
# LUT server image: slim Python, the `server` extra only (no torch), runs as a non-root user.
# Build:  docker build -t nas-lut-server .
# Run:    docker run -e DATABASE_URL=postgresql+psycopg://lut:PW@db:5432/lut -p 8000:8000 nas-lut-server
# The entrypoint (deploy/server-entrypoint.sh) applies the Alembic migrations, then starts `lut serve`.

# --- build stage: wheels for the project and its server dependencies -------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY lutcore ./lutcore
COPY lut_server ./lut_server
COPY profiler_agent ./profiler_agent
COPY search_client ./search_client
RUN pip wheel --wheel-dir /wheels ".[server]"

# --- runtime stage ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LUT_HOST=0.0.0.0 \
    LUT_PORT=8000

# The server never needs torch: install the wheels built above and nothing else.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels /wheels/*.whl \
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

RUN groupadd --system --gid 10001 lut \
    && useradd --system --uid 10001 --gid lut --home-dir /var/lib/lut --create-home --shell /usr/sbin/nologin lut

COPY --chmod=0755 deploy/server-entrypoint.sh /usr/local/bin/lut-server-entrypoint

USER 10001:10001
WORKDIR /var/lib/lut
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LUT_PORT', '8000'), timeout=2)"]

ENTRYPOINT ["/usr/local/bin/lut-server-entrypoint"]
CMD []
