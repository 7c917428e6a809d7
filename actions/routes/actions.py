"""One POST route per Hasura action. Identity comes only from ``session_variables``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from actions.deps import ResourcesDep
from actions.errors import Forbidden, InvalidInput
from actions.handlers import payments
from actions.hasura import ActionRequest, PaymentResult, ProcessPaymentArgs, session_role, session_user_id
from actions.routes._json import StrictJSONRoute
from actions.routes._responses import error
from actions.security import VerifiedAction

__all__ = ["router"]

router = APIRouter(prefix="/actions", tags=["actions"], dependencies=[VerifiedAction], route_class=StrictJSONRoute)


@router.post(
    "/processPayment",
    response_model=PaymentResult,
    summary="Charge an order once per idempotency key",
    responses={
        200: {"description": "Approved or declined (both stored); replays carry idempotentReplay: true"},
        400: error(
            "VALIDATION_FAILED, INVALID_JSON, JSON_TOO_DEEP, INVALID_AMOUNT, INVALID_AMOUNT_PRECISION, "
            "INVALID_CURRENCY, INVALID_IDEMPOTENCY_KEY, ACTION_MISMATCH: nothing stored"
        ),
        401: error("UNAUTHORIZED: X-Hasura-Action-Secret missing or wrong; nothing written"),
        403: error("FORBIDDEN: no valid x-hasura-user-id in the session, or a role not in ACTIONS_PAYMENT_ROLES"),
        404: error("ORDER_NOT_FOUND: no such order for this user"),
        409: error("IDEMPOTENCY_IN_PROGRESS (retry later) or ORDER_NOT_PAYABLE"),
        413: error("PAYLOAD_TOO_LARGE: body over ACTIONS_MAX_BODY_BYTES; nothing read further"),
        422: error("IDEMPOTENCY_KEY_REUSED (same key, different input) or AMOUNT_MISMATCH"),
        424: error(
            "PROVIDER_TIMEOUT / PROVIDER_UNAVAILABLE (outcome unknown), TRANSIENT_FAILURE (database unreachable; "
            "retryAfterSeconds) or INTERNAL: nothing stored as the key's answer, retry with the same key. "
            "Hasura relays only 2xx and 4xx, so server-side failures use 424 here"
        ),
    },
)
async def process_payment(body: ActionRequest[ProcessPaymentArgs], resources: ResourcesDep) -> JSONResponse:
    if body.action.name != "processPayment":
        raise InvalidInput(f"this endpoint handles processPayment, not {body.action.name}", code="ACTION_MISMATCH")
    user_id = session_user_id(body.session_variables)
    if user_id is None:
        raise Forbidden("processPayment needs a session with a valid x-hasura-user-id")
    if session_role(body.session_variables) not in resources.settings.payment_roles:
        raise Forbidden("this role may not call processPayment")
    outcome = await payments.process_payment(
        sessions=resources.sessions,
        provider=resources.provider,
        user_id=user_id,
        data=body.input.input,
        provider_timeout=resources.settings.provider_timeout_seconds,
        claim_lease_seconds=resources.settings.idempotency_claim_lease_seconds,
    )
    return JSONResponse(outcome.body, status_code=outcome.status)
