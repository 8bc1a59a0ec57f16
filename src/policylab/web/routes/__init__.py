"""Routers of the web app that live in their own modules (registered in `policylab.web.app`)."""
