"""Assets by group: ``selection`` (eligible and pending products) and ``images`` (per-product images)."""
