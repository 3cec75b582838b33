"""TMF678 Customer Bill Management v4.0.0.

Every definition of the official swagger, generated into ``tmf_models._generated.tmf678``
(``CustomerBill``, ``CustomerBill_Update``, ``CustomerBillOnDemand``,
``CustomerBillOnDemand_Create``, ``AppliedCustomerBillingRate``...).

The v4 swagger defines no events; ``EVENT_TYPES`` holds v4-style envelopes for the events
the v5 spec names (CustomerBillCreateEvent, CustomerBillStateChangeEvent,
CustomerBillOnDemandCreateEvent, CustomerBillOnDemandStateChangeEvent).
"""

from tmf_models._generated.tmf678 import *  # noqa: F403
from tmf_models._generated.tmf678 import StateValue, StateValues

#: CustomerBill.state (the v4 swagger calls it ``stateValue``; v5 ``CustomerBillStateType``).
CustomerBillStateType = StateValue
#: CustomerBillOnDemand.state (v4 ``StateValues``; v5 ``CustomerBillOnDemandStateType``).
CustomerBillOnDemandStateType = StateValues
