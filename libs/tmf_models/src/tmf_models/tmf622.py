"""TMF622 Product Ordering Management v4.0.0.

Every definition of the official swagger, generated into ``tmf_models._generated.tmf622``,
under its spec name (``ProductOrder``, ``ProductOrder_Create``, ``ProductOrder_Update``,
``CancelProductOrder``, ``CancelProductOrder_Create``, ``ProductOrderItem``...). The shared
types (``Money``, ``RelatedParty``, ``Note``...) are the ``tmf_models.common`` classes.
``EVENT_TYPES`` maps each eventType name to its envelope model.
"""

from tmf_models._generated.tmf622 import *  # noqa: F403
from tmf_models._generated.tmf622 import TaskStateType

#: The states of a CancelProductOrder task (the spec calls the enum TaskStateType).
CancelProductOrderStateType = TaskStateType
