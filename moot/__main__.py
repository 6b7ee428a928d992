import sys

from moot.cli import main

sys.exit(main())
