"""Every table of psc-idp, imported in one place for migrations (Alembic autogenerate)."""

from . import audit, ratelimit  # noqa: F401
from .admin import models as admin_models  # noqa: F401
from .ciba import models as ciba_models  # noqa: F401
from .clients import cache as clients_cache  # noqa: F401
from .clients import models as clients_models  # noqa: F401
from .directory import models as directory_models  # noqa: F401
from .ecps import models as ecps_models  # noqa: F401
from .extensions import db
from .oidc import models as oidc_models  # noqa: F401
from .oidc import par  # noqa: F401

metadata = db.metadata
