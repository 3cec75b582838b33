"""TMF676 Payment Management v4.0.0.

Every definition of the official swagger, generated into ``tmf_models._generated.tmf676``
(``Payment``, ``Payment_Create``, ``Refund``, ``Refund_Create``, ``PaymentItem``...).

``Payment.status`` and ``Refund.status`` are free strings in the spec; the example values
are ``PaymentStatusExampleType`` / ``RefundStatusExampleType`` (aliased below). Empty
``paymentMethod`` and ``totalAmount`` objects are valid, as the conformance kit sends them.
"""

from tmf_models._generated.tmf676 import *  # noqa: F403
from tmf_models._generated.tmf676 import PaymentStatusExampleType, RefundStatusExampleType

PaymentStatusType = PaymentStatusExampleType
RefundStatusType = RefundStatusExampleType
