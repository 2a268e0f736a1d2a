"""Every router of the knowledge base, chat, widget, leads and analytics, for main.ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from app.analytics.endpoints import router as analytics_router
from app.chat.endpoints import router as chat_router
from app.knowledge.endpoints import router as knowledge_router
from app.leads.endpoints import router as leads_router
from app.leads.endpoints import widget_router as leads_widget_router
from app.widget.endpoints import admin_router, public_router, script_router

KB_CHAT_ROUTERS: list[APIRouter] = [
    knowledge_router,
    admin_router,
    public_router,
    script_router,
    chat_router,
    leads_widget_router,
    leads_router,
    analytics_router,
]
