"""``python -m profiler_agent.cli``."""

import sys

from profiler_agent.cli.main import main

sys.exit(main())
