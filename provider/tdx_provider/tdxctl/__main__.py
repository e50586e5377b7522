"""``python -m tdx_provider.tdxctl``: the same as the ``tdxctl`` console script."""

import sys

from tdx_provider.tdxctl.main import main

sys.exit(main())
