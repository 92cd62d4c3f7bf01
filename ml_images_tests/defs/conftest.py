from ml_images_tests.defs.helpers import instance
from ml_images_tests.pipeline.fixtures import catalog, image_root, remover, sqlite_catalog, web

__all__ = ["catalog", "image_root", "instance", "remover", "sqlite_catalog", "web"]
