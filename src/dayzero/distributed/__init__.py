"""dayzero past one process, on Ray (the optional extra ``dayzero[ray]``).

:mod:`~dayzero.distributed.cluster` starts or joins a Ray cluster;
:mod:`~dayzero.distributed.encode` encodes a catalogue on Ray Data with an actor pool that loads
the encoder once per actor. Importing this package does not import Ray; each entry point does,
and says how to install it when it is missing.
"""
