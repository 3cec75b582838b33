"""TMF621 Trouble Ticket Management v4.0.0.

Every definition of the official swagger, generated into ``tmf_models._generated.tmf621``
(``TroubleTicket``, ``TroubleTicket_Create``, ``TroubleTicket_Update``, ``TroubleTicketStatusType``...).

Conformance-kit leniency: ``TroubleTicket_Create.status`` accepts an unknown value and keeps
it as a string (``TroubleTicketStatusType | str``); ``TroubleTicket_Update`` and
``TroubleTicket`` accept only ``TroubleTicketStatusType``. ``note`` is always an array.
``Note`` here is TMF621's own (``text`` optional), not ``common.Note``.
"""

from tmf_models._generated.tmf621 import *  # noqa: F403
