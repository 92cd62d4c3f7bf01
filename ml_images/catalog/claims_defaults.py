"""The default lease of a claim, in one place: ``settings`` (``ML_IMAGES_CLAIM_LEASE_SECONDS``), ``ImageRecorder``
and ``ImageCandidateSelector`` all take it from here. A module of its own so that ``settings`` can import it without
importing the catalog's models.
"""

#: How long a claim lives without a heartbeat (seconds): an older claim is taken over (``stale_claim``).
DEFAULT_CLAIM_LEASE_SECONDS = 60.0
