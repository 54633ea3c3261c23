"""``python -m threadline`` runs the ``threadline`` command."""

import sys

from threadline.cli import main

sys.exit(main())
