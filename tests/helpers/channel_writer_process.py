"""A writer in its own OS process, for the multi-process channel tests.

Usage: channel_writer_process.py TRANSPORT MNEMONIC ACCOUNT CHANNEL_ID_HEX COUNT
TRANSPORT is a ledger file, or ``pubsub:<Kubo RPC API multiaddr>`` (then the writer subscribes to
the open channel first). Prints "ready", waits for a line on stdin (so that all writers start
together), then publishes COUNT packets "ACCOUNT:i" and prints "done". With pubsub it then waits
for a line naming the channel's final head sequence and prints the hashes of its replica's chain
up to it ("chain <hex>,<hex>,...").
"""

import sys
import time

from joynet.channels import Channel, ChannelIdentity, ChannelReader, SQLiteLedger


def main(transport_name, mnemonic, account, channel_id_hex, count):
    pubsub = transport_name.startswith("pubsub:")
    if pubsub:
        from joynet.channels.pubsub import PubsubTransport

        transport = PubsubTransport(transport_name.removeprefix("pubsub:"))
    else:
        transport = SQLiteLedger(transport_name)
    channel_id = bytes.fromhex(channel_id_hex)
    channel = Channel(transport, ChannelIdentity.from_mnemonic(mnemonic, account=int(account)), channel_id)
    if pubsub:
        channel.subscribe()
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(int(count)):
        channel.publish(public=f"{account}:{i}".encode())
    print("done", flush=True)
    if pubsub:
        final = int(sys.stdin.readline())
        deadline = time.monotonic() + 60
        while transport.head_sequence(channel_id) < final and time.monotonic() < deadline:
            time.sleep(0.1)
        chain = ChannelReader(transport, channel_id).sync()  # every signature and link verified
        print("chain " + ",".join(message.hash.hex() for message in chain), flush=True)
        transport.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
