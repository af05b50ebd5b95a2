"""Sample data: a simulated loyalty program with survey and call-center exports, plus answers.

``generate()`` writes the three sources the pipeline reads and an answer key it never reads, so
models and reports can be checked against what was planted.
"""
