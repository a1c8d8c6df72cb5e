import sys

from minnet.cli import main

sys.exit(main())
