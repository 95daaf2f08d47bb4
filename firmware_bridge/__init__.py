"""The serial bridge from microcontroller devices (ticket dispensers, "assessment done" button panels)
to v1 protocol events: the framed device protocol (docs/firmware-protocol.md), its Python codec, the
bridge that reads serial ports and hands validated events to a durable sink, the service that runs it
beside the collector (`service.py`, behind `vardkoll bridge run`), and a device simulator.
The C reference implementation for firmware lives in `firmware/`."""

from .bridge import Bridge, BridgeStats, EventSink, MemorySink, OutboxSink
from .config import BridgeConfig, ConfigError, DeviceConfig, InputMapping, load_config, parse_config
from .framing import DecodeError, Frame, FrameDecoder, FrameError, crc16, encode_frame
from .messages import Ack, DeviceKind, EventMsg, Hello, HelloAck, MalformedMessage, MsgType, Nack, Reason, TimeSync

__all__ = [
    "Ack",
    "Bridge",
    "BridgeConfig",
    "BridgeStats",
    "ConfigError",
    "DecodeError",
    "DeviceConfig",
    "DeviceKind",
    "EventMsg",
    "EventSink",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Hello",
    "HelloAck",
    "InputMapping",
    "MalformedMessage",
    "MemorySink",
    "MsgType",
    "Nack",
    "OutboxSink",
    "Reason",
    "TimeSync",
    "crc16",
    "encode_frame",
    "load_config",
    "parse_config",
]
