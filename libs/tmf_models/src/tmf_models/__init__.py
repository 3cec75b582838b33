"""Typed TM Forum Open API v4 models, generated from the official specs.

Import by namespace so a TMF model is never confused with an ORM one::

    from tmf_models import common, tmf622

    order = tmf622.ProductOrder_Create.model_validate(body)
    payload = common.dump(order)
"""

__version__ = "0.1.0"
