import sys

from ml_images.cli import main

sys.exit(main())
