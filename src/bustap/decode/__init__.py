"""Payload decoders: one module each, registered here by name, run by the
chain (:mod:`bustap.decode.chain`) that picks one per message.

Selection, per message (the topic part decided once per topic and cached):
1. the first user rule (:class:`DecodeRule`) whose filter matches, when it
   names a decoder;
2. decoders that claim the topic, highest priority first;
3. otherwise decoders that recognise the content (``sniff``);
4. otherwise the generic ones: ``json``, ``number``, ``text``, ``binary``.
An MQTT 5 ``content_type`` (or a NATS ``Content-Type`` header) decides the
generic format: JSON types parse as JSON, ``text/*`` stays text,
``application/octet-stream`` stays binary even when it looks like text;
``payload_format_indicator`` 1 promises UTF-8. A decoder that fails leaves
the record with the generic decoding and ``decode_error: "<decoder>:
<reason>"``. Then the rule's device/event/severity expressions apply.
A JSON payload whose value would be written back as other bytes (spaces,
escapes, ``1.50``, integers past 64 bits, a decoder's rewrite) also keeps
its text as ``payload_raw``: ``bustap replay`` sends the bytes received.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from .base import Decoder

__all__ = ["DECODERS", "MAX_PARSE_BYTES", "DecodeRule", "Decoder", "DecoderChain",
           "load_all", "register_decoder"]

DECODERS: dict[str, type[Decoder]] = {}
_loaded = False
#: modules of this package that hold no decoder
_NOT_DECODERS = frozenset({"base", "chain"})


def register_decoder(name: str) -> Callable[[type[Decoder]], type[Decoder]]:
    def wrap(cls: type[Decoder]) -> type[Decoder]:
        cls.name = name
        DECODERS[name] = cls
        return cls
    return wrap


def load_all() -> dict[str, type[Decoder]]:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_") and info.name not in _NOT_DECODERS:
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return DECODERS


# the chain needs the registry above: imported last
from .chain import MAX_PARSE_BYTES, DecoderChain, DecodeRule  # noqa: E402
