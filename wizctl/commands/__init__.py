"""The commands of ``wizctl``, one module per group; ``wizctl.main`` registers them.

``base`` holds what every command shares: the per-run ``State`` (one
connection, one ``Lookup``), ``--json`` output and the ``NOUN VERB REF`` helper.
"""
