"""The Shimpo FGV-X / FGE-X force gauge driver (ASCII over RS-232)."""

from __future__ import annotations

from drivers.line_gauge import ACK, Ack, DeviceReport, LineGauge
from protocols.shimpo import Command, Echo, OtherReply, Reply, ReplyDecoder, encode_request

__all__ = ["Shimpo"]


class Shimpo(LineGauge[Reply]):
    """A Shimpo FGV-X gauge, polled for single data output.

    Wire protocol used (``protocols.shimpo``; 2400/4800/9600/19200 baud as set on the gauge,
    8N1; Shimpo FGV-X manual p.4, device-protocols.md §2.3):

    ==========  ==============================================  ==============================
    request     reply                                           use
    ==========  ==============================================  ==============================
    ``BA`` CR   the echo ``BA``, then ``NA<number>[ <unit>]``    one reading, polled
    ``AA`` CR   the echo ``AA``                                  tare (between polls)
    (any)       another printable line                          the undocumented error symbol?
    ==========  ==============================================  ==============================

    The gauge echoes every command as its acknowledgement; an echo never answers a poll (the
    wait goes on for the data line) and is not counted. A printable line that is neither an
    echo nor data may be the gauge's error symbol, whose spelling is undocumented: it is
    counted in ``errors``, and if nothing else comes for ``no_reply_limit_s`` the stream fails
    with :class:`~drivers.errors.DeviceFault`. Continuous output (``BB``) is not used: its
    description in the manual is truncated. There is no identity command.

    Units: a data line's printed unit is converted to newtons, so a unit changed on the gauge
    is followed; a line without a unit the codec recognises is read in ``default_unit``, and
    without one raises :class:`~drivers.errors.DeviceMisconfigured`. The driver never sends the
    unit commands (they would change the gauge's display). The sign is taken as printed,
    compression positive (unverified); ``invert=True`` flips it.

    Polling, health, timeouts and close are :class:`~drivers.line_gauge.LineGauge`'s. Tested
    against this project's simulator only; **not checked on hardware**.
    """

    model_name = "Shimpo FGV-X"
    baud_hint = (
        "check the baud rate (the gauge's setting: 2400, 4800, 9600 or 19200 baud, 8N1; give it "
        "as ?baud=) and the cable"
    )
    unit_hint = (
        "give the unit the gauge is set to in the address, e.g. "
        "`shimpo@serial:///dev/ttyUSB0?unit=N`"
    )

    def _new_decoder(self) -> ReplyDecoder:
        return ReplyDecoder()

    def _poll_request(self) -> bytes:
        return encode_request(Command.SINGLE_OUTPUT)

    def _tare_request(self) -> bytes:
        return encode_request(Command.TARE)

    def _meaning(self, reply: Reply) -> float | Ack | DeviceReport:
        if isinstance(reply, Echo):
            return ACK
        if isinstance(reply, OtherReply):
            text = f"{reply.text!r} (perhaps the gauge's error symbol, which is undocumented)"
            return DeviceReport(reply.text, text)
        unit_n = None if reply.unit is None else reply.unit.newtons
        return self._newtons(reply.value, unit_n, reply.raw)
