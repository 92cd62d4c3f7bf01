from __future__ import annotations

from django.apps import AppConfig


class AiecommerceConfig(AppConfig):
    # The label, not the module path, names the tables (aiecommerce_productmaster, ...), as in the original app.
    name = "ml_images_tests.django_catalog.aiecommerce"
    label = "aiecommerce"
    default_auto_field = "django.db.models.BigAutoField"
