"""Targeted programs for marketers: who each program reaches every cycle (with a randomised
control group), the exports campaign tools take, the measured lift, key drivers, and the segment
report. See programs/README.md; ``python -m programs --help`` lists the commands."""
