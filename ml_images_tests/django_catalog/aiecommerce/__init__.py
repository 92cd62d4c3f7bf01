"""The original Django application's catalog models (app label ``aiecommerce``), for tests only."""
