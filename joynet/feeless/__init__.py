"""Feeless inference over a model's channel: the message handler (``handler``), the requester's
side (``requester``) and the serving node's side (``serving``) of a request, and the bridgers'
checkpoints of a channel's usage (``bridger``)."""
