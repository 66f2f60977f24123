"""chatmem: a PostgreSQL conversation store where guest chats survive sign-up.

All behaviour lives in the SQL functions of schema ``api``; this package only
starts a local PostgreSQL when asked, applies migrations, and calls the API
through :class:`chatmem.Client`.
"""

from chatmem.api_errors import (
    AllowanceUsedUp,
    ChatmemError,
    EmailTaken,
    ForbiddenSession,
    GuestSessionLimit,
    HashingBusy,
    InvalidCredentials,
    InvalidInput,
    NotAuthorized,
    NotFound,
    TooManyLoginAttempts,
    WrongIsolation,
)
from chatmem.client import Client
from chatmem.models import Login, Message, NewSession, QAPair, Registration, Session, Tokens

__version__ = "0.1.0"

__all__ = [
    "AllowanceUsedUp",
    "ChatmemError",
    "Client",
    "EmailTaken",
    "ForbiddenSession",
    "GuestSessionLimit",
    "HashingBusy",
    "InvalidCredentials",
    "InvalidInput",
    "Login",
    "Message",
    "NewSession",
    "NotAuthorized",
    "NotFound",
    "QAPair",
    "Registration",
    "Session",
    "Tokens",
    "TooManyLoginAttempts",
    "WrongIsolation",
    "__version__",
]
