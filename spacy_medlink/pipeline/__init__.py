"""One module per component; factories are registered through entry points."""
