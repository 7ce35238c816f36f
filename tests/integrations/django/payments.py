"""A second application module with its own component: a payment provider that times out."""

from __future__ import annotations


def charge(order: int) -> None:
    raise TimeoutError(f"payment provider did not answer for order {order}")


def refund(order: int) -> None:
    raise ValueError(f"order {order} was never charged")
