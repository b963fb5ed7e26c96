import sys

from jacknet.cli import main

sys.exit(main())
