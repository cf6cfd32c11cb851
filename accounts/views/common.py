"""What the account pages share."""

from django.core.exceptions import ValidationError
from django.views.decorators.http import require_http_methods

# Pages that show a form (GET) and take it back (POST); anything else is a 405.
form_page = require_http_methods(["GET", "HEAD", "POST"])
# Sign-ins done by Tablero itself (after setup or sign-up) skip django-axes.
LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def error_text(error: ValidationError) -> str:
    return " ".join(error.messages)
