"""UnixFS files in dag-pb blocks, laid out exactly as kubo's ``ipfs add`` lays them out.

``file_blocks`` turns a file's bytes into blocks: 256 KiB fixed-size chunks, each a leaf (a dag-pb
node holding a UnixFS ``File`` with the chunk, or with ``--cid-version 1`` the raw chunk itself),
then a balanced tree of UnixFS ``File`` nodes of at most 174 links, a single leaf standing for
itself. ``read_file`` walks any UnixFS file DAG back to its bytes.

The protobuf encoding is written here by hand: no maintained PyPI package encodes UnixFS, and
dag-pb's canonical form (Links before Data, whatever their field numbers) is not what a generic
protobuf library writes. Only the fields kubo writes for files are produced.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from joynet.storage.cids import CID, DAG_PB, RAW, cid_from_bytes, cid_of_block, cid_text
from joynet.storage.errors import NotAFileError

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174

# UnixFS Data.DataType values (unixfs.proto).
_UNIXFS_RAW, _UNIXFS_FILE = 0, 2
_UNIXFS_TYPE_NAMES = {1: "directory", 3: "metadata node", 4: "symlink", 5: "HAMT-sharded directory"}

_VARINT, _LENGTH_DELIMITED = 0, 2


# ---- protobuf wire format ----


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _read_varint(buffer: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while offset < len(buffer) and shift < 64:
        byte = buffer[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    raise ValueError("truncated or oversized varint")


def _fields(buffer: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs; only the two wire types dag-pb and UnixFS use."""
    offset = 0
    value: int | bytes
    while offset < len(buffer):
        tag, offset = _read_varint(buffer, offset)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _VARINT:
            value, offset = _read_varint(buffer, offset)
        elif wire_type == _LENGTH_DELIMITED:
            length, offset = _read_varint(buffer, offset)
            if offset + length > len(buffer):
                raise ValueError("truncated field")
            value, offset = buffer[offset : offset + length], offset + length
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
        yield number, value


# ---- dag-pb ----


@dataclass(frozen=True)
class Link:
    cid: CID
    tsize: int  # the whole sub-DAG's encoded size, as kubo records it
    name: str = ""


def encode_node(data: bytes, links: Iterable[Link]) -> bytes:
    """PBNode in dag-pb's canonical order: every Link (field 2), then Data (field 1)."""
    return b"".join(_bytes_field(2, _encode_link(link)) for link in links) + _bytes_field(1, data)


def _encode_link(link: Link) -> bytes:
    # kubo writes Name even when empty, and Tsize.
    return _bytes_field(1, link.cid.buffer) + _bytes_field(2, link.name.encode()) + _varint_field(3, link.tsize)


def decode_node(block: bytes) -> tuple[bytes | None, list[Link]]:
    data, links = None, []
    for number, value in _fields(block):
        if number == 1 and isinstance(value, bytes):
            data = value
        elif number == 2 and isinstance(value, bytes):
            links.append(_decode_link(value))
        else:
            raise ValueError(f"unexpected dag-pb field {number}")
    return data, links


def _decode_link(encoded: bytes) -> Link:
    fields = dict(_fields(encoded))
    return Link(
        cid=cid_from_bytes(bytes(fields[1])),
        tsize=_varint_value(fields.get(3, 0)),
        name=bytes(fields.get(2, b"")).decode(),
    )


# ---- UnixFS ----


def _unixfs_file(content: bytes, filesize: int, blocksizes: Iterable[int] = ()) -> bytes:
    # kubo omits an empty Data field but always writes filesize, even 0.
    encoded = _varint_field(1, _UNIXFS_FILE)
    if content:
        encoded += _bytes_field(2, content)
    encoded += _varint_field(3, filesize)
    return encoded + b"".join(_varint_field(4, size) for size in blocksizes)


def _decode_unixfs(encoded: bytes) -> tuple[int, bytes]:
    """(UnixFS type, inline content)."""
    fields = dict(_fields(encoded))
    if 1 not in fields:
        raise ValueError("UnixFS data without a type")
    return _varint_value(fields[1]), bytes(fields.get(2, b""))


def _varint_value(value: int | bytes) -> int:
    """A varint field's value; bytes where a varint belongs make the block malformed."""
    if isinstance(value, bytes):
        raise ValueError("a length-delimited field where a varint belongs")
    return value


# ---- building a file's DAG ----


@dataclass(frozen=True)
class Block:
    cid: CID
    data: bytes


@dataclass(frozen=True)
class _Node:
    """What a parent needs to know to link to a node."""

    cid: CID
    tsize: int
    filesize: int


def file_blocks(chunks: Iterable[bytes], cid_version: int) -> Iterator[Block]:
    """Every block of the file's DAG, children before parents; the last one is the root.

    Filling levels of at most MAX_LINKS nodes bottom-up gives the same tree as kubo's balanced
    builder (full subtrees on the left, the last ones partial) while holding only one pending
    list of links per level, so a file of any size streams through.
    """
    levels: list[list[_Node]] = [[]]
    for chunk in _at_least_one(chunks):
        block, node = _leaf(chunk, cid_version)
        yield block
        levels[0].append(node)
        depth = 0
        while len(levels[depth]) == MAX_LINKS:
            block, node = _parent(levels[depth], cid_version)
            yield block
            levels[depth] = []
            if depth + 1 == len(levels):
                levels.append([])
            levels[depth + 1].append(node)
            depth += 1
    yield from _close_partial_levels(levels, cid_version)


def _close_partial_levels(levels: list[list[_Node]], cid_version: int) -> Iterator[Block]:
    for depth, pending in enumerate(levels):
        is_top = depth == len(levels) - 1
        if is_top and len(pending) == 1:
            return  # the root, already yielded
        if pending:
            block, node = _parent(pending, cid_version)
            yield block
            if is_top:
                return
            levels[depth + 1].append(node)


def _at_least_one(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """An empty file is one empty leaf, as in kubo."""
    empty = True
    for chunk in chunks:
        empty = False
        yield chunk
    if empty:
        yield b""


def _leaf(chunk: bytes, cid_version: int) -> tuple[Block, _Node]:
    if cid_version == 1:  # raw leaves
        block = Block(cid_of_block(chunk, RAW, 1), chunk)
    else:
        encoded = encode_node(_unixfs_file(chunk, len(chunk)), [])
        block = Block(cid_of_block(encoded, DAG_PB, 0), encoded)
    return block, _Node(block.cid, len(block.data), len(chunk))


def _parent(children: list[_Node], cid_version: int) -> tuple[Block, _Node]:
    filesize = sum(child.filesize for child in children)
    data = _unixfs_file(b"", filesize, [child.filesize for child in children])
    encoded = encode_node(data, [Link(child.cid, child.tsize) for child in children])
    block = Block(cid_of_block(encoded, DAG_PB, cid_version), encoded)
    return block, _Node(block.cid, len(encoded) + sum(child.tsize for child in children), filesize)


def chunked(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """Fixed-size chunks from a binary stream's ``read``."""
    while chunk := read(CHUNK_SIZE):
        yield chunk


# ---- reading a file's DAG ----


BlockGetter = Callable[[CID], Awaitable[bytes]]


async def read_file(cid: CID, get_block: BlockGetter) -> AsyncIterator[bytes]:
    """The file's bytes in order, piece by piece; ``get_block`` must return verified blocks."""
    if cid.codec == RAW:
        yield await get_block(cid)
        return
    if cid.codec != DAG_PB:
        raise NotAFileError(f"{cid_text(cid)} is a {cid.codec} block, not a UnixFS file")
    content, links = _file_node(cid, await get_block(cid))
    if content:
        yield content
    for link in links:
        async for piece in read_file(link.cid, get_block):
            yield piece


def file_size(cid: CID, block: bytes) -> int:
    """The size of the file whose verified root block is ``block`` (its UnixFS filesize)."""
    if cid.codec == RAW:
        return len(block)
    if cid.codec != DAG_PB:
        raise NotAFileError(f"{cid_text(cid)} is a {cid.codec} block, not a UnixFS file")
    content, _ = _file_node(cid, block)
    data, _ = decode_node(block)
    filesize = dict(_fields(data or b"")).get(3)
    return len(content) if filesize is None else _varint_value(filesize)


def _file_node(cid: CID, block: bytes) -> tuple[bytes, list[Link]]:
    try:
        data, links = decode_node(block)
        unixfs_type, content = _decode_unixfs(data or b"")
    except (ValueError, KeyError) as error:
        raise NotAFileError(f"{cid_text(cid)} is not a UnixFS node ({error})") from None
    if unixfs_type not in (_UNIXFS_FILE, _UNIXFS_RAW):
        kind = _UNIXFS_TYPE_NAMES.get(unixfs_type, f"UnixFS type {unixfs_type}")
        raise NotAFileError(f"{cid_text(cid)} is a {kind}, not a file")
    return content, links
