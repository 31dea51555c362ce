"""The server never imports torch, not even through the core."""

from __future__ import annotations

import subprocess
import sys

from tests.live_server import REPO, server_env

CODE = """
import sys
import lut_server, lut_server.app, lut_server.cli, lut_server.exchange, lut_server.spaces
from lut_server.app import create_app
from lut_server.config import Settings
app = create_app(Settings(db_url=sys.argv[1]))
from fastapi.testclient import TestClient
with TestClient(app) as c:
    c.post("/api/v1/cost-matrix", json={"space": "squeezenas-small", "resolution": "64x128",
                                        "target": "xavier/tensorrt/fp16"})
    c.get("/docs")
from lut_server.predictor import Predictor  # what serves missing="predict": LightGBM, scikit-learn, SciPy
from lutcore.ops import Conv
Predictor().fit([(Conv(c_in=8, h=16, w=16, c_out=c, stride=1, kernel=3), 0.01 * c) for c in range(1, 20)])
assert "torch" not in sys.modules, sorted(m for m in sys.modules if "torch" in m)
print("ok")
"""


def test_server_never_imports_torch(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", CODE, f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True,
                         text=True, env=server_env(), cwd=str(REPO), timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
