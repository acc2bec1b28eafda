"""A writer in its own OS process, for the multi-process ledger test.

Usage: channel_writer_process.py LEDGER MNEMONIC ACCOUNT CHANNEL_ID_HEX COUNT
Prints "ready", waits for a line on stdin (so that all writers start together), then publishes
COUNT packets "ACCOUNT:i" and prints how many append attempts lost a race.
"""

import sys

from joynet.channels import Channel, ChannelIdentity, SQLiteLedger


def main(ledger_path, mnemonic, account, channel_id_hex, count):
    channel = Channel(SQLiteLedger(ledger_path), ChannelIdentity.from_mnemonic(mnemonic, account=int(account)), bytes.fromhex(channel_id_hex))
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(int(count)):
        channel.publish(public=f"{account}:{i}".encode())
    print("done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
