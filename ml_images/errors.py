"""Errors shared across the pipeline.

Two families matter to the orchestration layer:

* ``ConfigurationError`` — the deployment is wrong (bad env var, missing model, un-migrated database).
  Raised at start-up; nothing is processed.
* ``TransientError`` — infrastructure is unavailable right now (database, S3, search 5xx after retries).
  The step fails, products stay pending, Dagster's RetryPolicy may try again.

``SearchQuotaError`` stops the run but is not retried: quota and auth problems need a person.
Per-candidate problems are *not* exceptions that escape a product: they become ``Refusal`` records.
"""

from __future__ import annotations


class MlImagesError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(MlImagesError):
    """The deployment is misconfigured; the message says what to change."""


class SchemaNotMigratedError(ConfigurationError):
    """The catalog database schema is missing or behind; run ``ml-images db upgrade``."""


class ModelNotInstalledError(ConfigurationError):
    """The rembg model file is absent and cannot be downloaded here."""


class TransientError(MlImagesError):
    """Infrastructure is unavailable now; retrying later may succeed. Never marks a product ERROR."""


class ClaimLostError(TransientError):
    """The claim's attempt was finished by someone else (stale-claim takeover); nothing was written."""


class SearchUnavailableError(TransientError):
    """The search provider kept failing (429/5xx/timeouts) after the bounded retries."""


class StorageUnavailableError(TransientError):
    """The image store (S3 or local folder) could not be written or read."""


class CatalogUnavailableError(TransientError):
    """The catalog database could not be reached."""


class SearchQuotaError(MlImagesError):
    """Quota exhausted or credentials refused (401/403/dailyLimitExceeded). Stops the run; no product ERROR."""
