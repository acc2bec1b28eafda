"""The IOTA bridger agent: one member of the IOTAValidator committee, checkpointing feeless
channels, each handler calling a :class:`~joynet.feeless.bridger.Bridger`.

  * ``StreamLinkRequested`` (IOTAValidator): consider the link a model owner asked for;
  * ``StreamLinked`` (IOTAValidator): follow the newly linked stream;
  * every tick: sign the requested links whose stream's author consented to them, and submit one
    once the board holds the threshold; for each followed stream, co-sign the board's proposals
    that continue from the chain's head and that this bridger rebuilt identically from the
    channel; propose its own checkpoint when none is pending; submit a proposal once it holds the
    threshold of signatures.

``joynet agent bridger`` / ``ape run iota_bridger`` (``agents/cli.py``) runs ``bot`` with a
``Bridger`` built from its options, following the IOTAValidator.
"""

from joynet.chain.bot import Bot
from joynet.feeless.bridger import Bridger

bot = Bot("iota_bridger", poll_seconds=1.0)


@bot.on_("StreamLinkRequested")
def stream_link_requested(bridger: Bridger, log):
    """A model owner asked for its stream's link: sign it once the stream's author consented."""
    bridger.consider_link(log)


@bot.on_("StreamLinked")
def stream_linked(bridger: Bridger, log):
    """A feeless model's stream was linked: follow it."""
    bridger.follow(log)


@bot.on_tick()
def checkpoint_streams(bridger: Bridger):
    """Sign or submit the requested links, then co-sign, propose or submit the followed streams'
    checkpoints; stop once caught up if asked."""
    links_settled = bridger.link_streams()
    if bridger.checkpoint_streams() and links_settled and bridger.until_caught_up:
        bridger.say("every followed stream is checkpointed: stopping")
        bot.stop()
