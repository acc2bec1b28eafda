import sys

from joynet.cli import main

sys.exit(main())
