"""The Wagner Instruments FDIX (Force One) driver, also for the FDX (Force Ten), over RS-232."""

from __future__ import annotations

from drivers.line_gauge import Ack, DeviceReport, LineGauge, StreamPlan
from protocols.wagner import (
    RATES_HZ,
    Overload,
    Reply,
    ReplyDecoder,
    Request,
    SetRate,
    encode_request,
)

__all__ = ["Wagner", "stream_rate_for"]


def stream_rate_for(rate_hz: float) -> float:
    """The documented stream rate closest to ``rate_hz`` (a tie goes to the faster one)."""
    return min(RATES_HZ, key=lambda r: (abs(r - rate_hz), -r))


class Wagner(LineGauge[Reply]):
    """A Wagner FDIX gauge, streaming continuous output, polled when the stream does not come.

    Wire protocol used (``protocols.wagner``; device-protocols.md §2.4; baud undocumented,
    9600 8N1 guessed):

    ===================  =========================================  ==========================
    request              reply                                      use
    ===================  =========================================  ==========================
    ``C.5`` … ``C100``   none                                       the stream rate nearest
                                                                    ``rate_hz`` (connect)
    ``CA``               none                                       stream every point, zeros
                                                                    too (connect)
    ``CB``               records, ``±XXX.XX UU[ Peak]`` CR LF       begin the stream (connect)
    ``F``                one record                                 poll (the fallback)
    ``CE``               none                                       end the stream (close)
    ===================  =========================================  ==========================

    Stream first: ``CA`` matters, because with ``CX`` a gauge at rest sends nothing and would
    look silent. If no record arrives for
    :data:`~drivers.line_gauge.STREAM_FALLBACK_S` (0.5 s, or three stream periods at slow
    rates, at most half of ``no_reply_limit_s``), after connect or later, the driver sends
    ``CE`` and polls with ``F`` on the ``rate_hz`` grid for the rest of the session: the
    gauge's firmware may predate continuous output (3.3.3), or it power-cycled and forgot
    ``CB``, which is why the UNC algometer software polls with ``F`` (§2.4, [S]).
    :attr:`streaming` says which. Closing sends ``CE`` before closing the link, if a stream
    was begun. No command is acknowledged (none is documented) and there is no identity
    command.

    Units: every record prints its unit, which is converted to newtons; ``default_unit`` is
    ignored unless the printed spelling is one the codec does not recognise (the spelling is
    undocumented), and then it is the unit assumed; without it such a record raises
    :class:`~drivers.errors.DeviceMisconfigured`. Sign: as documented, a space is compression
    (positive) and a minus is tension (negative); ``invert=True`` flips it. ``HELP`` (overload)
    is not a reading: it is counted in ``errors``, and only overloads for ``no_reply_limit_s``
    end the stream with :class:`~drivers.errors.DeviceFault`.

    Tare: the protocol documents no zero command, so :meth:`tare` raises
    :class:`~drivers.errors.UnsupportedCommand`. Health, timeouts and close are
    :class:`~drivers.line_gauge.LineGauge`'s. Tested against this project's simulator only;
    **not checked on hardware**.
    """

    model_name = "Wagner FDIX"
    baud_hint = (
        "check the baud rate (Wagner's is undocumented: 9600 8N1 is assumed, give the gauge's "
        "as ?baud=) and the cable (the FDIX is RS-232 only: use a USB-serial adapter)"
    )
    unit_hint = (
        "the gauge prints a unit the driver does not recognise: give the unit the gauge is set "
        "to in the address, e.g. `wagner@serial:///dev/ttyUSB0?unit=lbF`"
    )

    def _new_decoder(self) -> ReplyDecoder:
        return ReplyDecoder()

    def _poll_request(self) -> bytes:
        return encode_request(Request.POLL)

    def _stream_plan(self, rate_hz: float) -> StreamPlan:
        rate = stream_rate_for(rate_hz)
        start = (SetRate(rate), Request.ALL_POINTS, Request.BEGIN)
        return StreamPlan(
            rate, tuple(encode_request(c) for c in start), encode_request(Request.END)
        )

    def _meaning(self, reply: Reply) -> float | Ack | DeviceReport:
        if isinstance(reply, Overload):
            direction = "tension" if reply.tension else "compression"
            return DeviceReport("HELP", f"overloaded in {direction} (HELP)")
        unit_n = None if reply.unit is None else reply.unit.newtons
        return self._newtons(reply.value, unit_n, reply.raw)
