"""``python -m sample_data`` is the same as ``python -m sample_data.generate``."""

from sample_data.generate import main

main()
