"""The service's routes, one module per group; :data:`ROUTERS` in the order they are served
(and listed in the OpenAPI document)."""

from dayzero.serve.routes import admin, items, ops, recommendations, risk, writes

ROUTERS = (
    writes.router,
    items.router,
    recommendations.router,
    risk.router,
    admin.router,
    ops.router,
)

__all__ = ["ROUTERS"]
