"""The deciding core: plain data in, plain data out.

Nothing in this package imports Faust or aiokafka, opens a socket or reads a clock; time is
passed in as ``now_ms``. The runtime shell calls it once per record.
"""
