"""Stage 3: which usage plan the request runs under, and which bucket its limits count against.

- The plan: an API key's plan when the request carries one; else ``EDGE_JWT_PLAN`` for verified
  credentials (JWT or authorizer); else ``EDGE_ANONYMOUS_PLAN``.
- The role must be among the plan's ``roles`` when the plan lists any (403 otherwise).
- The limit key: the API key id, else the user id (``x-hasura-user-id``), else the client
  address (``X-Forwarded-For`` only from trusted proxies, see ``edge.http.client_address``).
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.context import RequestContext
from edge.errors import RoleNotInPlan
from edge.http.client_address import ClientAddressResolver
from edge.plans import Plan
from edge.session import Identity

__all__ = ["IdentifyPlan"]


class IdentifyPlan:
    """Fills ``ctx.plan_name``, ``ctx.plan`` and ``ctx.limit_key``; rejects 403 (role not in plan)."""

    def __init__(
        self, *, plans: Mapping[str, Plan], jwt_plan: str, anonymous_plan: str, addresses: ClientAddressResolver
    ) -> None:
        self.plans = plans
        self.jwt_plan = jwt_plan
        self.anonymous_plan = anonymous_plan
        self.addresses = addresses

    def __call__(self, ctx: RequestContext) -> None:
        identity = ctx.identity
        if identity is None:  # a pipeline ordering bug, never a client error
            raise RuntimeError("identify_plan ran before authenticate")
        if identity.api_key is None and not identity.session.user_id:
            client = self.addresses.resolve(ctx.client, ctx.header_values(b"x-forwarded-for"))
        else:
            client = ""  # not needed: the limit key is the API key or the user
        ctx.plan_name, ctx.plan, ctx.limit_key = self.resolve(identity, client)

    def resolve(self, identity: Identity, client_address: str) -> tuple[str, Plan, str]:
        """(plan name, plan, limit key) for an identity; also used by the WebSocket path."""
        if identity.api_key is not None:
            name = identity.api_key.plan
            key = f"key:{identity.api_key.key_id}"
        else:
            name = self.anonymous_plan if identity.credential == "anonymous" else self.jwt_plan
            user = identity.session.user_id
            key = f"user:{user}" if user else f"ip:{client_address}"
        plan = self.plans.get(name)
        if plan is None:
            # Keys are created against the configured plans; a plan removed since is refused cleanly.
            raise RoleNotInPlan(f"The usage plan {name!r} of this credential no longer exists")
        if plan.roles is not None and identity.session.role not in plan.roles:
            raise RoleNotInPlan(f"Role {identity.session.role!r} is not allowed on plan {name!r}")
        return name, plan, key
