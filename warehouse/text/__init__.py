"""What customers say: sentiment, topics and effort read from survey comments and call notes.

``rules`` applies the readable YAML files here (``lexicon.yml``: the CX complaint lexicon over
VADER and the effort phrases; ``topics.yml``: the topic taxonomy). ``classifier`` trains the
deployment's own sentiment classifier from its NPS/CSAT-labelled comments and gives the scorer
to use (the ``cx_sentiment`` champion, else the lexicon fallback). ``enrich`` writes the lake's
enriched text files that dbt reads; ``cli`` is ``make sentiment`` and the sentiment evaluation.
"""
