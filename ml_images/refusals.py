"""Where ``ml_images.processing`` imports the refusal type from; the type lives in ``ml_images.outcomes``.

Kept only because processing/ is changed by another piece of work at the same time: once it imports
``ml_images.outcomes`` this module goes.
"""

from ml_images.outcomes import Refusal

__all__ = ["Refusal"]
