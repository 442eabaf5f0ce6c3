"""The broker services a request needs, read from ``app.state`` when the request arrives.

``streamhouse serve`` builds the HTTP app before the log starts (so ``/health`` answers during
recovery) and assigns ``app.state.broker`` / ``app.state.groups`` once they exist; until then
every REST resource answers 503 NOT_READY instead of failing somewhere deeper.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from streamhouse.broker.service import BrokerService, GroupService
from streamhouse.workbench.http.errors import ApiError


def _not_ready(what: str) -> ApiError:
    return ApiError(503, "NOT_READY", f"the {what} service is not ready yet; retry shortly")


def broker_service(request: Request) -> BrokerService:
    broker = getattr(request.app.state, "broker", None)
    if broker is None:
        raise _not_ready("broker")
    return broker


def group_service(request: Request) -> GroupService:
    groups = getattr(request.app.state, "groups", None)
    if groups is None:
        raise _not_ready("group")
    return groups


Broker = Annotated[BrokerService, Depends(broker_service)]
Groups = Annotated[GroupService, Depends(group_service)]
