import sys

from adaptaug.cli import main

sys.exit(main())
