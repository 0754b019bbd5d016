import sys

from gradgym.cli import main

sys.exit(main())
