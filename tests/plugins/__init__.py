"""Pytest plugins shared by the suite, loaded through tests/conftest.py."""
