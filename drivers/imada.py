"""The Imada force gauge driver (DS2 / ZT / HTG2, ASCII over RS-232 or USB-serial)."""

from __future__ import annotations

from drivers.line_gauge import Ack, DeviceReport, LineGauge
from protocols.imada import Reading, ReplyDecoder, encode_request

__all__ = ["Imada"]


class Imada(LineGauge[Reading]):
    """An Imada gauge, polled for its displayed value.

    Wire protocol used (``protocols.imada``; 19200 baud 8N1; device-protocols.md §2.2):

    ==========  ============================================  ==================================
    request     reply                                         use
    ==========  ============================================  ==================================
    ``D`` CR    ``<number><unit><mode><condition>`` CR        the displayed value, polled
    ==========  ============================================  ==================================

    ``D`` is the only command documented publicly, so there is no identity to read and
    :meth:`tare` raises :class:`~drivers.errors.UnsupportedCommand` (zero on the keypad).

    Units: the gauge prints its unit as a status letter whose meaning is undocumented, so the
    driver never reads it: every reading is taken in ``default_unit`` (the address's ``?unit=``,
    the unit the gauge is set to). Without one, :meth:`connect` raises
    :class:`~drivers.errors.DeviceMisconfigured`: guessing newtons for a gauge set to lbf would
    be 4.45x off. The sign is taken as printed, compression positive (unverified);
    ``invert=True`` flips it.

    Polling, health, timeouts and close are :class:`~drivers.line_gauge.LineGauge`'s. Tested
    against this project's simulator only; **not checked on hardware**.
    """

    model_name = "Imada force gauge"
    baud_hint = "check the baud rate (Imada gauges talk at 19200 baud, 8N1) and the cable"
    unit_hint = (
        "Imada gauges do not say their unit in a documented way: give the unit the gauge is "
        "set to in the address, e.g. `imada@serial:///dev/ttyUSB0?unit=N`"
    )

    def _new_decoder(self) -> ReplyDecoder:
        return ReplyDecoder()

    def _poll_request(self) -> bytes:
        return encode_request()

    def _meaning(self, reply: Reading) -> float | Ack | DeviceReport:
        return self._newtons(reply.value, None, reply.raw)  # the unit letter is undocumented
