"""A stand-in for Luma's Dream Machine API (api.lumalabs.ai), run as its own process: `python -m generations.simulator`.

Stdlib, PyAV, numpy, Pillow and requests only: it shares nothing with the Django app but the HTTP contract.
"""
