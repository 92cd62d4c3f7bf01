"""The three models of the original app whose tables the ``django`` catalog layout reads and writes.

Fields, lengths, nullability and indexes are those of the original models at their latest migration (issue 12
lists them). Help texts and verbose names, which never reach the database, are left out. The migrations beside
this module were generated from it by Django's own ``makemigrations``; regenerate them after any change here.
"""

from __future__ import annotations

from django.db import models


class ProductMaster(models.Model):
    # Declared in the column order of a database migrated through the original app's history (fields added by
    # later migrations come last), so the tables match a shop's column for column.
    description = models.TextField(null=True, blank=True)
    category = models.CharField(max_length=255, null=True, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    last_updated = models.DateTimeField(auto_now=True)
    code = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    image_url = models.URLField(max_length=2000, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    stock_colon = models.CharField(max_length=10, null=True, blank=True)
    stock_gye_norte = models.CharField(max_length=10, null=True, blank=True)
    stock_gye_sur = models.CharField(max_length=10, null=True, blank=True)
    stock_principal = models.CharField(max_length=10, null=True, blank=True)
    stock_sur = models.CharField(max_length=10, null=True, blank=True)
    specs = models.JSONField(default=dict, null=True, blank=True)
    is_for_mercadolibre = models.BooleanField(default=False)
    seo_description = models.TextField(null=True, blank=True)
    seo_title = models.CharField(max_length=60, null=True, blank=True, db_index=True)
    sku = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    gtin = models.CharField(max_length=14, null=True, blank=True, db_index=True)
    gtin_source = models.CharField(max_length=50, null=True, blank=True)
    model_name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    normalized_name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    last_bundled_date = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ProductMaster {self.pk} ({self.code})"


class ProductImage(models.Model):
    # PositiveIntegerField is what gives the column its CHECK ("order" >= 0) on PostgreSQL.
    product = models.ForeignKey(ProductMaster, on_delete=models.CASCADE, related_name="images")
    url = models.URLField(max_length=2000)
    order = models.PositiveIntegerField(default=0)
    is_processed = models.BooleanField(default=False)

    class Meta:
        ordering = ("order",)

    def __str__(self) -> str:
        return f"ProductImage {self.pk} of {self.product_id} ({self.order})"


class MercadoLibreListing(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        ACTIVE = "ACTIVE", "Active"
        PAUSED = "PAUSED", "Paused"
        ERROR = "ERROR", "Error"

    # Column order of the original app's history, as for ProductMaster.
    ml_id = models.CharField(max_length=24, unique=True, db_index=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    last_synced = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    product_master = models.OneToOneField(ProductMaster, on_delete=models.CASCADE, related_name="mercadolibre_listing")
    category_id = models.CharField(max_length=30, null=True, blank=True)
    final_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    net_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    profit = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    available_quantity = models.IntegerField(null=True, blank=True)
    attributes = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("-updated_at",)
        indexes = (models.Index(fields=["status", "last_synced"]),)

    def __str__(self) -> str:
        return f"MercadoLibreListing {self.pk} of {self.product_master_id} ({self.status})"
