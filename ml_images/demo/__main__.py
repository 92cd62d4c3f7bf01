"""``python -m ml_images.demo``: see :mod:`ml_images.demo.runner`."""

import sys

from ml_images.demo.runner import main

if __name__ == "__main__":
    sys.exit(main())
