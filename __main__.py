"""The root project (``make demo``) is examples/quickstart, run from here: see Pulumi.yaml."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).parent / "examples" / "quickstart" / "__main__.py"),
               run_name="__main__")
