"""ml_images: find, prepare and store product photos for Mercado Libre listings."""

__version__ = "0.1.0"
