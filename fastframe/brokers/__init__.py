"""Broker engines for topics across processes and machines, one module per
engine; :data:`fastframe.pubsub.ENGINES` maps URL schemes to them, and
:class:`fastframe.pubsub.Broker` is the interface each implements."""
