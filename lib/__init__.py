"""Small plain helpers shared by the apps (healthchecks' `hc/lib`): no models, no views.

Every app may import from here; nothing here imports an app.
"""
