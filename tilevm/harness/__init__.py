"""The check and bench harness (``python -m tilevm check|bench``): a user of the public API
and the runtime; nothing else in tilevm imports it."""
