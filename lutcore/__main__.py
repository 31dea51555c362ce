import sys

from lutcore.cli import main

sys.exit(main())
