"""The ``joynet`` command.

    joynet ipfs add [--cid-version 1] [--only-hash] FILE   prints the CID (as ``ipfs add -Q``)
    joynet ipfs cat CID                                    writes the file to stdout
    joynet model publish DIR                               prints the model metadata's CID
    joynet model publish-builtin                           publishes the digits MLP and all-MiniLM-L6-v2;
                                                           prints {"digits": CID, "minilm": CID}

Content goes to the embedded store ($JOYNET_IPFS_DIR, default ~/.joynet/ipfs) unless
``--api MULTIADDR`` (or $JOYNET_IPFS_API) names a Kubo RPC API. Errors print one line on stderr
and exit 1.
"""

import argparse
import asyncio
import sys

from joynet.models.package import ModelPackageError, publish_model
from joynet.storage import API_ENV, StoreError, open_store


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(args.command(args))
    except (StoreError, ModelPackageError) as error:
        return _fail(str(error))
    except OSError as error:  # a file that is missing, a directory, unreadable
        return _fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))
    return 0


async def _ipfs_add(args) -> None:
    async with open_store(args.api) as store:
        print(await store.add_file(args.file, cid_version=args.cid_version, only_hash=args.only_hash))


async def _ipfs_cat(args) -> None:
    async with open_store(args.api) as store:
        async for piece in store.iter_cat(args.cid):
            sys.stdout.buffer.write(piece)
    sys.stdout.buffer.flush()


async def _model_publish(args) -> None:
    async with open_store(args.api) as store:
        print(await publish_model(store, args.directory, cid_version=args.cid_version))


async def _model_publish_builtin(args) -> None:
    import json

    from joynet.models.builtin import publish_builtin_models

    async with open_store(args.api) as store:
        print(json.dumps(await publish_builtin_models(store, cid_version=args.cid_version)))


def _parser() -> argparse.ArgumentParser:
    store_options = argparse.ArgumentParser(add_help=False)
    store_options.add_argument(
        "--api",
        metavar="MULTIADDR",
        help=f"Kubo RPC API to use, e.g. /ip4/127.0.0.1/tcp/5001 (default: ${API_ENV}, else the embedded store)",
    )
    cid_version = argparse.ArgumentParser(add_help=False)
    cid_version.add_argument(
        "--cid-version", type=int, choices=(0, 1), default=0, help="0 (default) or 1 (raw leaves, base32), as in kubo"
    )

    parser = argparse.ArgumentParser(prog="joynet", description="JoyNet: models on IPFS for the inference marketplace.")
    groups = parser.add_subparsers(dest="group", required=True)

    ipfs = groups.add_parser("ipfs", help="add and fetch files with kubo's CIDs")
    ipfs_actions = ipfs.add_subparsers(dest="action", required=True)
    add = ipfs_actions.add_parser("add", parents=[store_options, cid_version], help="add a file; print its CID")
    add.add_argument("--only-hash", action="store_true", help="compute the CID without storing anything")
    add.add_argument("file")
    add.set_defaults(command=_ipfs_add)
    cat = ipfs_actions.add_parser("cat", parents=[store_options], help="write a file to stdout (verified)")
    cat.add_argument("cid")
    cat.set_defaults(command=_ipfs_cat)

    model = groups.add_parser("model", help="model packages")
    model_actions = model.add_subparsers(dest="action", required=True)
    publish = model_actions.add_parser(
        "publish", parents=[store_options, cid_version], help="add a model directory; print its metadata CID"
    )
    publish.add_argument("directory", help="the model's files and its model.yaml (or model.json)")
    publish.set_defaults(command=_model_publish)
    builtin = model_actions.add_parser(
        "publish-builtin",
        parents=[store_options, cid_version],
        help='publish the built-in models (digits MLP, all-MiniLM-L6-v2); print {"digits": CID, "minilm": CID}',
    )
    builtin.set_defaults(command=_model_publish_builtin)
    return parser


def _fail(message: str) -> int:
    print(f"joynet: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
