import sys

from profiler_agent.cli import main

sys.exit(main())
