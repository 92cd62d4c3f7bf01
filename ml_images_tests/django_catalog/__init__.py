"""The original Django application's catalog tables, created by Django itself, for the ``django`` catalog layout.

Django is a test-only dependency (the ``dev`` extra). This package holds a minimal settings module, an
``aiecommerce`` app whose models ``ProductMaster``, ``ProductImage`` and ``MercadoLibreListing`` have the fields of
the original app at its latest migration (issue 12), the migration Django's ``makemigrations`` generated for them,
and two tools:

* the fixtures ``django_catalog`` (runs once on SQLite and once on PostgreSQL, through ``database_url``) and
  ``django_catalog_at`` (a function: give it the URL of a ``sqlite_url`` / ``postgres_url`` database). Both run
  ``migrate aiecommerce`` against an empty database and return a :class:`~.harness.DjangoCatalog`: its ``url`` is
  the SQLAlchemy URL to hand to ``ml-images`` (``ML_IMAGES_DATABASE_URL``), its model attributes read and write
  through Django's ORM, and ``schema_snapshot()`` describes the three tables;
* :func:`~.schema.schema_changes`, which compares two snapshots and lists every column, index, constraint,
  trigger or foreign key into the tables that was added, removed or changed.

A later test of the ``django`` layout reads::

    def test_pictures_land_in_the_django_tables(django_catalog, monkeypatch):
        product = django_catalog.ProductMaster.objects.create(code="A1", is_for_mercadolibre=True, ...)
        django_catalog.MercadoLibreListing.objects.create(product_master=product)
        before = django_catalog.schema_snapshot()
        monkeypatch.setenv("ML_IMAGES_DATABASE_URL", django_catalog.url)
        monkeypatch.setenv("ML_IMAGES_CATALOG_LAYOUT", "django")
        ...  # ml-images db upgrade, then a run
        product.refresh_from_db()
        assert [image.order for image in product.images.all()] == [0, 1, 2]
        assert product.mercadolibre_listing.status == "PENDING"  # refresh_from_db() the listing too
        assert schema_changes(before, django_catalog.schema_snapshot()) == []

Django runs inside the test process (the ORM read-back needs its models there); ``harness.py`` says how one
configuration serves every test's database. On SQLite, Django and ``ml-images`` share the database file: close
nothing by hand, but do not hold a Django transaction open while ``ml-images`` writes.

Regenerate the migration after a change to ``aiecommerce/models.py`` with
``python -m ml_images_tests.django_catalog makemigrations aiecommerce`` (then ``ruff format``);
``python -m ml_images_tests.django_catalog sqlmigrate aiecommerce 0001`` prints the SQL Django runs
(``ML_IMAGES_DJANGO_DATABASE_URL=postgresql+psycopg2://... `` for PostgreSQL's).
"""
