"""Personal data: erasure, the suppression list, keyed hashes, redaction, access grants."""
